"""Re-write the shared NVIDIA / TensorFlow fixture pickles with another pickle protocol.

What a user gets from ``pickle.dump(network_dict, f, protocol=0)`` (or 1) with NVIDIA's code
loaded: the same objects, the same globals (``torch_utils.persistence._reconstruct_persistent_obj``,
``dnnlib.util.EasyDict``, ``dnnlib.tflib.network.Network``, torch's and numpy's rebuild
functions), but text opcodes, ``_codecs.encode`` for bytes and ``copyreg._reconstructor`` for
classes, and no PROTO header. Python's own pickler writes them here: stand-ins registered under
NVIDIA's module names for the duration of the dump reduce exactly as NVIDIA's objects do.

Only the project's own fixtures are read, with an unpickler that resolves nothing but those
stand-ins and torch / numpy / collections rebuild functions.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import sys
import types


def _reconstruct_persistent_obj(meta):
    return _Persistent(meta)


class _Persistent:
    """An NVIDIA ``persistent_class`` instance: pickles itself as a call with its meta dict."""

    def __init__(self, meta):
        self.meta = meta

    def __reduce__(self):
        return _reconstruct_persistent_obj, (self.meta,)


class EasyDict(dict):
    """``dnnlib.util.EasyDict``: a dict whose keys are also attributes."""


class Network:
    """``dnnlib.tflib.network.Network``: pickled through ``__getstate__`` / ``__setstate__``."""

    def __setstate__(self, state):
        self._state = state

    def __getstate__(self):
        return self._state


_STANDINS = {("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
             ("dnnlib.util", "EasyDict"): EasyDict,
             ("dnnlib", "EasyDict"): EasyDict,
             ("dnnlib.tflib.network", "Network"): Network}
_REAL_MODULES = ("torch._utils", "torch.storage", "torch", "collections", "numpy", "numpy.core.multiarray",
                 "numpy._core.multiarray", "builtins", "_codecs", "copyreg")


class _FixtureUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _STANDINS:
            return _STANDINS[(module, name)]
        if module in _REAL_MODULES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a fixture")


@contextlib.contextmanager
def _nvidia_names():
    """Register the stand-ins under NVIDIA's module names while the pickler looks them up."""
    saved = {k: sys.modules.get(k) for k in ("torch_utils", "torch_utils.persistence", "dnnlib",
                                              "dnnlib.util", "dnnlib.tflib", "dnnlib.tflib.network")}
    modules = {name: types.ModuleType(name) for name in saved}
    modules["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    modules["dnnlib.util"].EasyDict = EasyDict
    modules["dnnlib.tflib.network"].Network = Network
    for obj, module, name in ((_reconstruct_persistent_obj, "torch_utils.persistence", "_reconstruct_persistent_obj"),
                              (EasyDict, "dnnlib.util", "EasyDict"), (Network, "dnnlib.tflib.network", "Network")):
        obj.__module__, obj.__qualname__ = module, name
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def repickled(path, protocol: int) -> bytes:
    """The fixture pickle at ``path`` written again with ``protocol`` (0 … 5)."""
    with open(path, "rb") as f:
        root = _FixtureUnpickler(io.BytesIO(f.read())).load()
    with _nvidia_names():
        return pickle.dumps(root, protocol=protocol)
