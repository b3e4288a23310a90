"""Exception types: every failure a user can cause gets its own, with a one-line message."""


class StylemixError(Exception):
    """Base class; the CLI prints these as one line and exits non-zero."""


class ModelLoadError(StylemixError, ValueError):
    """A model file could not be read: corrupt, truncated, unknown format, missing network."""


class UnsafeModelFileError(ModelLoadError):
    """A pickle asked for a global outside the allow-list: it would run code if loaded naively."""


class UnsupportedModelError(ModelLoadError):
    """A well-formed file holding an architecture or option that stylemix does not implement yet."""


class IncompatibleModelsError(StylemixError, ValueError):
    """Two generators cannot be blended: the first mismatching parameter is named."""


class ExportError(StylemixError, ValueError):
    """A generator cannot be written in the requested format (and why)."""


class BlendSpecError(StylemixError, ValueError):
    """A blend specification is malformed (bad α, unknown resolution, bad syntax)."""


class ImageInputError(StylemixError, ValueError):
    """An uploaded photo cannot be used: not an image, corrupt, too many pixels, animated…"""


class NoFaceError(ImageInputError):
    """The photo holds no face the detector can find."""


class OptionError(StylemixError, ValueError):
    """An option has a value stylemix cannot use (named in the message with what it accepts)."""
