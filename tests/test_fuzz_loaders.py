"""Fuzzing the loaders: any mutation of a real model file either loads or raises ModelLoadError.

Bounded: a fixed number of examples, each on a small file, with a deadline per example.
"""

import functools
import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

import stylemix
from conftest import FIXTURES, NV_BASE, ROSINALITY

def _native_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "base.safetensors"
        stylemix.save(stylemix.load_generator(NV_BASE), path)
        return path.read_bytes()


KINDS = ("pkl", "pt", "safetensors", "sg3.pkl", "tf.pkl", "tf_scalars.pkl", "train.pt", "cuda.pkl")


def _tf_scalars_bytes() -> bytes:
    """A small TF pickle as TensorFlow wrote them: few stored settings, numpy-scalar 0-d
    variables, a lod variable (tests/test_field.py's writer)."""
    from test_field import TF_VARIANTS, _tf_variant, tf_pickle
    overrides, stored = TF_VARIANTS["labels and mapping depth in kwargs"]
    return tf_pickle(_tf_variant(**overrides), stored)


@functools.cache
def _file(kind: str) -> bytes:
    """The unmutated file of each kind, read when first fuzzed (not at import, so a checkout
    without the fixtures still collects, and these tests fail saying what they need)."""
    if kind == "safetensors":
        return _native_bytes()
    if kind == "tf_scalars.pkl":
        return _tf_scalars_bytes()
    return {"pkl": NV_BASE, "pt": ROSINALITY, "sg3.pkl": FIXTURES / "stylegan3" / "sg3r64_base.pkl",
            "tf.pkl": FIXTURES / "tf" / "skip64_base_tf.pkl",
            "train.pt": FIXTURES / "field" / "rosinality_train_checkpoint.pt",
            "cuda.pkl": FIXTURES / "field" / "cuda_storages.pkl"}[kind].read_bytes()


FUZZ = settings(max_examples=60, deadline=10_000, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _load(tmp_path, data: bytes, suffix: str):
    path = tmp_path / f"fuzz.{suffix.rpartition('.')[2]}"
    path.write_bytes(data)
    readers = [stylemix.load_generator] + {  # and the new paths: rosinality's d, TF's raw G
        "train.pt": [stylemix.formats.load_discriminator],
        "tf_scalars.pkl": [lambda p: stylemix.load_generator(p, network="G")]}.get(suffix, [])
    for read in readers:
        try:
            read(path)
        except stylemix.ModelLoadError:
            pass  # a clear refusal is the expected outcome; anything else fails the test


@FUZZ
@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 2 ** 32 - 1),
       flips=st.integers(1, 16), head_bias=st.booleans())
def test_bit_flips(tmp_path_factory, kind, seed, flips, head_bias):
    data = bytearray(_file(kind))
    rng = random.Random(seed)
    span = min(len(data), 4096) if head_bias else len(data)  # the structure lives near the start
    for _ in range(flips):
        data[rng.randrange(span)] ^= 1 << rng.randrange(8)
    _load(tmp_path_factory.mktemp("flip"), bytes(data), kind)


@FUZZ
@given(kind=st.sampled_from(KINDS), cut=st.floats(0, 1, exclude_max=True),
       junk=st.binary(max_size=64))
def test_truncation_and_junk(tmp_path_factory, kind, cut, junk):
    data = _file(kind)
    _load(tmp_path_factory.mktemp("cut"), data[: int(len(data) * cut)] + junk, kind)
