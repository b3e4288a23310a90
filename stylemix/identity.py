"""Is it still the same person? dlib's face-recognition descriptors, offline.

dlib's ResNet (``dlib_face_recognition_resnet_model_v1.dat``, shipped in the
``face_recognition_models`` package; King 2017, 99.38 % on LFW) maps an aligned face chip to a
128-d descriptor; two faces whose descriptors are less than 0.6 apart (Euclidean) are the same
person by dlib's own threshold. stylemix uses it to measure whether a projection's
reconstruction, or a toonified image, still shows the person in the photo.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image

from .align import _dlib_models, landmark_model_path
from .errors import ImageInputError

SAME_PERSON = 0.6          # dlib's threshold on descriptor distance
RECOGNITION_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
MIN_SIDE = 256             # small renders are enlarged first: dlib's detector misses faces < ~80 px

_recogniser = {}
_lock = threading.Lock()


def _recognition_model():
    with _lock:
        if "model" not in _recogniser:
            import dlib
            landmarks = landmark_model_path()
            path = landmarks.parent / RECOGNITION_MODEL if landmarks is not None else None
            if path is None or not Path(path).is_file():
                raise ImageInputError("identity checks need dlib's face-recognition model: "
                                      "pip install face_recognition_models")
            _recogniser["model"] = dlib.face_recognition_model_v1(str(path))
        return _recogniser["model"]


def face_descriptor(image: Image.Image) -> np.ndarray | None:
    """The 128-d descriptor of the largest face dlib finds in ``image`` (enlarged to at least
    MIN_SIDE px with Lanczos), or None when it finds no face."""
    image = image.convert("RGB")
    if min(image.size) < MIN_SIDE:
        scale = MIN_SIDE / min(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    arr = np.asarray(image)
    models = _dlib_models()
    with _lock:
        rects = models["detector"](arr, 0)
        if not len(rects):
            rects = models["detector"](arr, 1)
        if not len(rects):
            return None
        rect = max(rects, key=lambda r: r.width() * r.height())
        shape = models["predictor"](arr, rect)
    return np.asarray(_recognition_model().compute_face_descriptor(arr, shape), dtype=np.float64)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two descriptors (same person below SAME_PERSON)."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
