"""stylemix: resolution-dependent blending of StyleGAN2 and StyleGAN3 generators ("layer swapping", Toonify).

    import stylemix
    G = stylemix.load_generator("ffhq.pkl")
    B = stylemix.blend(G, stylemix.load_generator("toon.pkl"), stylemix.BlendSpec.swap(16))
    stylemix.save(B, "blend.pkl")
"""

from .blend import BlendSpec, blend, blend_many, check_compatible
from .errors import (BlendSpecError, ExportError, ImageInputError, IncompatibleModelsError,
                     ModelLoadError, NoFaceError, StylemixError, UnsafeModelFileError,
                     UnsupportedModelError)
from .formats import detect_format, load_generator, save
from .networks import Generator, GeneratorConfig

__version__ = "0.1.0"

__all__ = [
    "BlendSpec", "BlendSpecError", "ExportError", "Generator", "GeneratorConfig",
    "ImageInputError", "IncompatibleModelsError", "NoFaceError", "ModelLoadError", "StylemixError", "UnsafeModelFileError",
    "UnsupportedModelError", "blend", "blend_many", "check_compatible", "detect_format",
    "load_generator", "save",
]
