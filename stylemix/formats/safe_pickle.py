"""Read NVIDIA network pickles without executing anything stored in them.

A plain ``pickle.load`` of an NVIDIA ``.pkl`` imports ``torch_utils.persistence`` and exec()s the
Python source stored inside the file.  Here every global the pickle asks for is looked up in an
allow-list and replaced by an inert stand-in:

* persistent network objects become :class:`PersistentRecord` (class name, init kwargs, state,
  the stored source kept as opaque text that is never run);
* tensor storages are rebuilt with ``torch.load(weights_only=True)``;
* numpy arrays and scalars are rebuilt only for non-object dtypes;
* ``dnnlib`` containers become plain dicts / records that remember their class.

Any other global raises :class:`UnsafeModelFileError` naming it.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import copyreg
import io
import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import ModelLoadError, UnsafeModelFileError

# Bytes every legacy (non-zip) torch.save payload starts with: a pickled magic number.
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."


class PersistentRecord:
    """An NVIDIA ``persistent_class`` object, kept as data.

    ``meta`` is the dict NVIDIA's pickler stored: ``type``, ``version``, ``module_src`` (never run),
    ``class_name`` and ``state`` (the module's ``__dict__``: ``_init_kwargs``, ``_parameters``,
    ``_buffers``, ``_modules``, plain attributes).
    """

    def __init__(self, meta: Any):
        if not isinstance(meta, dict) or "class_name" not in meta or "state" not in meta:
            raise ModelLoadError("malformed persistent object in pickle (no class_name/state)")
        self.meta = meta

    @property
    def class_name(self) -> str:
        return str(self.meta["class_name"])

    @property
    def state(self) -> dict:
        state = self.meta["state"]
        if not isinstance(state, dict):
            raise ModelLoadError(f"persistent object {self.class_name} has no state dict")
        return state

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args") or ())

    def children(self) -> dict:
        """Sub-modules by attribute name (``_modules``)."""
        return dict(self.state.get("_modules") or {})

    def named_tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Parameters and persistent buffers of this module and its children, NVIDIA names."""
        out: dict[str, torch.Tensor] = {}
        state = self.state
        skip = set(state.get("_non_persistent_buffers_set") or ())
        for kind in ("_parameters", "_buffers"):
            for name, value in (state.get(kind) or {}).items():
                if value is None or (kind == "_buffers" and name in skip):
                    continue
                if not isinstance(value, torch.Tensor):
                    raise ModelLoadError(f"{prefix}{name} in the pickle is not a tensor")
                out[prefix + name] = value
        for name, child in self.children().items():
            if child is None:
                continue
            if not isinstance(child, PersistentRecord):
                raise ModelLoadError(
                    f"sub-module {prefix}{name} is a {type(child).__name__}, not a network record")
            out.update(child.named_tensors(prefix + name + "."))
        return out

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name})"


class EasyDictRecord(dict):
    """``dnnlib.util.EasyDict``: a plain dict (export rewrites bytes in place, never re-pickles)."""


class TFNetworkRecord:
    """``dnnlib.tflib.network.Network`` of an old TensorFlow pickle; its state is kept as data."""

    def __init__(self, *args, **kwargs):
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


@dataclass
class StorageSlot:
    """Where a tensor storage's raw bytes sit inside the pickle file (for in-place export)."""

    payload_start: int
    payload_length: int
    nbytes: int
    dtype: torch.dtype
    numel: int

    @property
    def data_start(self) -> int:
        # Legacy torch.save writes the raw element data last, after an 8-byte element count.
        return self.payload_start + self.payload_length - self.nbytes


@dataclass
class PickleContents:
    """What :func:`safe_load_pickle` returns: the object tree and, on request, storage slots."""

    root: Any
    slots: dict[int, StorageSlot] = field(default_factory=dict)  # untyped storage data_ptr -> slot


def _load_storage_bytes(payload: Any):
    if not isinstance(payload, (bytes, bytearray)):
        raise ModelLoadError("tensor storage in pickle is not a byte string")
    try:
        # Each payload records the device its storage lived on ('cuda:0' when the networks were
        # pickled on a GPU): read every one into CPU memory; loaders move to the asked device.
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad data
        raise ModelLoadError(f"corrupt tensor storage in pickle: {_short(exc)}") from None


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, backward_hooks=None,
                    metadata=None):
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise ModelLoadError("tensor in pickle does not point at a tensor storage")
    if not (isinstance(offset, int) and isinstance(size, tuple) and isinstance(stride, tuple)
            and all(isinstance(v, int) and v >= 0 for v in (offset, *size, *stride))):
        raise ModelLoadError("tensor in pickle has malformed offset/size/stride")
    try:
        return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False,
                                               collections.OrderedDict())
    except Exception as exc:
        raise ModelLoadError(f"tensor in pickle does not fit its storage: {_short(exc)}") from None


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    if not isinstance(data, torch.Tensor):
        raise ModelLoadError("parameter in pickle does not wrap a tensor")
    return torch.nn.Parameter(data, requires_grad=False)


def _numpy_dtype(obj, align=False, copy=False):
    dtype = np.dtype(obj, bool(align), bool(copy)) if isinstance(obj, str) else None
    if dtype is None or dtype.hasobject:
        raise UnsafeModelFileError(f"pickle asks for numpy dtype {obj!r}, which is not allowed")
    return dtype


def _numpy_reconstruct(cls, shape, typecode):
    if cls is not np.ndarray:
        raise UnsafeModelFileError("pickle asks numpy to rebuild a non-ndarray class")
    return np.ndarray.__new__(np.ndarray, shape, typecode)


class LocatedArray(np.ndarray):
    """An array that remembers where its raw bytes sit in the pickle (``stylemix_offset``), so
    TF export can overwrite them in place.  Only made when the caller asks to locate arrays."""

    stylemix_offset: int | None = None


# Opcodes that carry a bytes payload, and the size of their length field (protocol ≥ 3).
_BYTES_OPCODES = {b"C": 1, b"B": 4, b"\x8e": 8}


def _payload_start(data: bytes, raw: bytes, cursor: int) -> int | None:
    """Where ``raw`` starts as a whole bytes payload at or after ``cursor`` (its opcode header
    checked, so a short array never matches stray bytes inside some other opcode)."""
    start = data.find(raw, cursor)
    while start >= 0:
        for opcode, width in _BYTES_OPCODES.items():
            head = start - width - 1
            if head >= 0 and data[head:head + 1] == opcode and \
                    int.from_bytes(data[head + 1:start], "little") == len(raw):
                return start
        start = data.find(raw, start + 1)
    return None


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UnsafeModelFileError("pickle asks for a numpy scalar of a disallowed type")
    if len(data) != dtype.itemsize:
        raise ModelLoadError(f"numpy scalar in pickle has {len(data)} bytes for a {dtype} value")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _codecs_encode(text, encoding="utf-8"):
    # Protocol-2 pickles store bytes as _codecs.encode(str, 'latin1'); nothing else is allowed.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeModelFileError("pickle calls _codecs.encode with unexpected arguments")
    return codecs.encode(text, "latin1")


def _copyreg_reconstructor(cls, base, state):
    # Protocol 0/1 rebuild of a dict subclass (EasyDict); only our own record classes qualify.
    if cls not in (EasyDictRecord, TFNetworkRecord) or base not in (object, dict):
        raise UnsafeModelFileError("pickle asks copyreg to rebuild a disallowed class")
    return copyreg._reconstructor(cls, base, state)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "object"): object,
    ("builtins", "dict"): dict,
    ("copyreg", "_reconstructor"): _copyreg_reconstructor,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentRecord,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("dnnlib.util", "EasyDict"): EasyDictRecord,
    ("dnnlib", "EasyDict"): EasyDictRecord,
    ("dnnlib.tflib.network", "Network"): TFNetworkRecord,
    ("_codecs", "encode"): _codecs_encode,
}


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, file, data: bytes | None, locate_arrays: bool = False):
        super().__init__(file)
        self._data = data
        self._cursor = 0
        self._locate_arrays = locate_arrays
        self.slots: dict[int, StorageSlot] = {}

    def find_class(self, module: str, name: str):
        # Python 2 era names (protocol ≤ 2), mapped as pickle's own find_class does.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        target = _ALLOWED.get((module, name))
        if target is None:
            raise UnsafeModelFileError(
                f"refusing to load: the pickle asks for '{module}.{name}', which could run code; "
                "only NVIDIA network pickles with plain tensors are accepted")
        if target is _load_storage_bytes and self._data is not None:
            return self._load_and_locate
        if target is _numpy_reconstruct and self._locate_arrays:
            return self._reconstruct_located
        if target is _numpy_scalar and self._locate_arrays:
            return self._scalar_located
        return target

    def _scalar_located(self, dtype, data=None):
        """A numpy scalar (TensorFlow's 0-d variables) as a 0-d LocatedArray, so TF export can
        overwrite its bytes too: they are the scalar's own bytes payload, not an array's."""
        value = _numpy_scalar(dtype, data)
        arr = np.asarray(value).view(LocatedArray)
        start = _payload_start(self._data, data, self._cursor)
        if start is not None:
            self._cursor = start + len(data)
            arr.stylemix_offset = start
        return arr

    def _reconstruct_located(self, cls, shape, typecode):
        _numpy_reconstruct(cls, shape, typecode)  # the same checks
        arr = np.ndarray.__new__(LocatedArray, shape, typecode)
        unpickler = self

        def setstate(state):
            np.ndarray.__setstate__(arr, state)
            raw = state[4] if isinstance(state, tuple) and len(state) == 5 else None
            if isinstance(raw, bytes) and raw:
                start = _payload_start(unpickler._data, raw, unpickler._cursor)
                if start is not None:
                    unpickler._cursor = start + len(raw)
                    arr.stylemix_offset = start
            del arr.__dict__["__setstate__"]  # done: drop the reference to the unpickler
        arr.__dict__["__setstate__"] = setstate
        return arr

    def persistent_load(self, pid):
        raise UnsafeModelFileError("refusing to load: the pickle uses persistent ids")

    def _load_and_locate(self, payload):
        storage = _load_storage_bytes(payload)
        start = self._data.find(payload, self._cursor)
        if start >= 0 and isinstance(storage, torch.TypedStorage):
            self._cursor = start + len(payload)
            untyped = storage._untyped_storage
            self.slots[untyped.data_ptr()] = StorageSlot(
                start, len(payload), untyped.nbytes(), storage.dtype, storage.size())
        return storage


def safe_load_pickle(data: bytes, locate_storages: bool = False,
                     locate_arrays: bool = False) -> PickleContents:
    """Unpickle ``data`` through the allow-list; never imports or runs code from it.

    ``locate_storages`` / ``locate_arrays`` record where tensor storages / numpy arrays keep
    their raw bytes in ``data``, for in-place export."""
    unpickler = _AllowListUnpickler(io.BytesIO(data), data if (locate_storages or locate_arrays) else None,
                                    locate_arrays)
    try:
        root = unpickler.load()
    except ModelLoadError:
        raise
    except MemoryError:
        raise ModelLoadError("the pickle declares more data than fits in memory (corrupt?)") from None
    except (EOFError, pickle.UnpicklingError) as exc:
        raise ModelLoadError(f"the pickle is truncated or corrupt ({_short(exc)})") from None
    except RecursionError:
        raise ModelLoadError("the pickle nests objects too deeply") from None
    except Exception as exc:
        raise ModelLoadError(f"the pickle is corrupt ({type(exc).__name__}: {_short(exc)})") from None
    return PickleContents(root, unpickler.slots)


def _short(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
