"""NVIDIA stylegan2-ada-pytorch network pickles: safe loading and in-place export.

Export never re-creates NVIDIA's objects (that would need their source code).  Instead the
original file is the template: the raw bytes of each tensor of the chosen network are
overwritten with the new values, so D, training_set_kwargs, every stored source text and every
other byte stay exactly as they were, and NVIDIA's own ``legacy.py`` loads the result.

A blend also records its recipe, as ``info`` shows it for .pt and .safetensors files: one more
entry of the pickled dict, ``stylemix_blend`` (a JSON string), set by opcodes placed just before
the final STOP.  NVIDIA's loaders read the dict by key and ignore entries they do not know.
"""

from __future__ import annotations

import json
import os
import pickletools
import struct

import torch

from ..errors import ExportError, ModelLoadError, UnsupportedModelError
from ..networks import Generator
from . import nvidia_kwargs, nvidia_sg3, tf_pkl
from ..io import atomic_write, file_sha256
from .common import ModelSource, build_generator, template_for
from .registry import PICKLE, FileFormat, read_pickle
from .safe_pickle import PersistentRecord, TFNetworkRecord

NETWORK_KEYS = ("G_ema", "G")
RECIPE_KEY = "stylemix_blend"


def _generator_record(root, network: str) -> PersistentRecord:
    if isinstance(root, tuple) and any(isinstance(v, TFNetworkRecord) for v in root):
        raise ExportError("an old TensorFlow pickle cannot serve as the NVIDIA template")
    if not isinstance(root, dict):
        raise ModelLoadError(
            f"this pickle holds a {type(root).__name__}, not an NVIDIA network dict with 'G_ema'")
    if network not in root:
        keys = ", ".join(sorted(map(str, root))) or "none"
        raise ModelLoadError(f"the pickle has no '{network}' network (its keys: {keys})")
    record = root[network]
    if not isinstance(record, PersistentRecord):
        raise ModelLoadError(f"'{network}' in the pickle is not an NVIDIA network object")
    synthesis = record.children().get("synthesis")
    if record.class_name != "Generator" or not isinstance(synthesis, PersistentRecord):
        raise UnsupportedModelError(
            f"'{network}' is a {record.class_name}, not a StyleGAN2 Generator")
    if record.init_args:
        raise UnsupportedModelError("generator was built with positional arguments; cannot read its config")
    return record


def _generator_from_root(root, path, network: str = "G_ema", device="cpu") -> Generator:
    """``network`` of an NVIDIA pickle's root dict as our generator (StyleGAN2 or 3)."""
    if network not in NETWORK_KEYS:
        raise ValueError(f"network must be one of {NETWORK_KEYS}, not {network!r}")
    record = _generator_record(root, network)
    if nvidia_sg3.is_stylegan3(record):
        config = nvidia_sg3.config_from_record(record)
    else:
        config = nvidia_kwargs.generator_config(record.init_kwargs)
    source = ModelSource("nvidia_pkl", os.path.abspath(path), file_sha256(path), network)
    G = build_generator(config, record.named_tensors(), source, device,
                        what=f"'{network}' of {os.path.basename(path)}")
    G.blend_info = _recipe(root)
    return G


def _recipe(root) -> dict | None:
    """The blend recipe a stylemix export stored in the pickle, if any (damaged: ignored)."""
    text = root.get(RECIPE_KEY) if isinstance(root, dict) else None
    try:
        recipe = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return recipe if isinstance(recipe, dict) else None


def _recipe_opcodes(recipe: dict) -> bytes:
    """SETITEM root[RECIPE_KEY] = JSON text, then STOP (opcodes every protocol ≥ 1 reader knows)."""
    key, text = RECIPE_KEY.encode(), json.dumps(recipe, sort_keys=True).encode()
    return (b"X" + struct.pack("<I", len(key)) + key      # BINUNICODE key
            + b"X" + struct.pack("<I", len(text)) + text  # BINUNICODE value
            + b"s.")                                      # SETITEM, STOP


def with_recipe(data: bytes, recipe: dict | None, old: dict | None) -> bytes:
    """The pickle image ``data`` whose root dict gets ``recipe`` (replacing ``old``, the one
    it holds; None removes it).  The STOP of a protocol-4 pickle sits inside its last frame:
    that frame is shortened by one byte so the added opcodes follow it, as large payloads
    do, and any unpickler reads them."""
    if old is not None and data.endswith(_recipe_opcodes(old)):
        data = data[: -len(_recipe_opcodes(old))] + b"."
    if recipe is None:
        return data
    if not data.endswith(b".") or data[1:2] < b"\x02":
        raise ExportError("the template pickle does not end as a pickle does, or is protocol < 2")
    last_frame = None
    for opcode, arg, pos in pickletools.genops(data):
        if opcode.name == "FRAME":
            last_frame = (pos, arg)
    body = bytearray(data[:-1])
    if last_frame is not None and last_frame[0] + 9 + last_frame[1] == len(data):
        body[last_frame[0] + 1: last_frame[0] + 9] = struct.pack("<Q", last_frame[1] - 1)
    return bytes(body) + _recipe_opcodes(recipe)


def _discriminator_from_root(root, path=None, device="cpu"):
    """The pickle's D as our Discriminator, or None when the file has no usable one."""
    from ..networks.discriminator import Discriminator
    record = root.get("D") if isinstance(root, dict) else None
    if not isinstance(record, PersistentRecord) or record.class_name != "Discriminator":
        return None
    try:
        D = Discriminator(nvidia_kwargs.discriminator_config(record.init_kwargs))
        D.load_state_dict(record.named_tensors())
    except (UnsupportedModelError, RuntimeError, TypeError):
        return None  # an optional extra: a D we cannot rebuild is simply not used
    return D.eval().requires_grad_(False).to(device)


def save(G: Generator, path: str | os.PathLike, template: str | os.PathLike | None = None) -> None:
    """Write ``G`` into a copy of an NVIDIA pickle: ``template``, or by default the one G (or
    its blend base) came from.  A ``template`` that is an old TF pickle is written as one."""
    template_path, network = template_for(G, "nvidia_pkl", template, "G_ema", "an NVIDIA .pkl")
    with open(template_path, "rb") as f:
        data = bytearray(f.read())
    # Read once, locating both torch storages and numpy arrays: the template may be either kind.
    contents = read_pickle(bytes(data), locate_storages=True, locate_arrays=template is not None)
    if tf_pkl.is_tf_root(contents.root):
        return tf_pkl.write_into(G, data, contents.root, "Gs", path)
    template = _generator_record(contents.root, network).named_tensors()
    ours = G.state_dict()
    if set(template) != set(ours):
        missing = sorted(set(template) ^ set(ours))[0]
        raise ExportError(f"generator and template {os.path.basename(template_path)} differ at '{missing}'")
    for name, old in template.items():
        new = ours[name].detach().to("cpu")
        if tuple(new.shape) != tuple(old.shape):
            raise ExportError(f"'{name}' has shape {list(new.shape)}, template {list(old.shape)}")
        slot = contents.slots.get(old.untyped_storage().data_ptr())
        if slot is None:
            raise ExportError(
                f"cannot locate the raw bytes of '{name}' in the template pickle (pickles of "
                "protocol 2 or older store them as text); save as .safetensors or .pt instead")
        # A writable view of the storage's bytes inside the file image; write the new values in.
        storage = torch.frombuffer(data, dtype=slot.dtype, count=slot.numel, offset=slot.data_start)
        storage.as_strided(old.shape, old.stride(), old.storage_offset()).copy_(new.to(slot.dtype))
    image = with_recipe(bytes(data), G.blend_info, _recipe(contents.root))
    with atomic_write(path) as tmp:
        tmp.write_bytes(image)


# G and D come from one read of the pickle (hundreds of MB): the registry reads it once.
FORMAT = FileFormat("nvidia_pkl", "NVIDIA .pkl", "NVIDIA network pickle", PICKLE, (".pkl",),
                    load=_generator_from_root, load_discriminator=_discriminator_from_root, save=save)
