"""Is it still the same person? dlib's face-recognition descriptors, offline.

dlib's ResNet (``dlib_face_recognition_resnet_model_v1.dat``, shipped in the
``face_recognition_models`` package; King 2017, 99.38 % on LFW) maps an aligned face chip to a
128-d descriptor; two faces whose descriptors are less than 0.6 apart (Euclidean) are the same
person by dlib's own threshold. stylemix uses it to measure whether a projection's
reconstruction, or a toonified image, still shows the person in the photo.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
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


# --- toonify, measured ------------------------------------------------------------------------


@dataclass
class IdentityRow:
    """One photo through align → project → render: fidelity, and who dlib thinks it is."""
    name: str
    psnr: float               # reconstruction vs aligned photo, dB, at the model's resolution
    ssim: float
    seconds: float            # align + project + both renders
    recon_found: bool         # dlib finds a face in the reconstruction
    toon_found: bool          # … and in the toonified image
    own_distance: float       # reconstruction ↔ its own photo (nan when a face is missing)
    nearest_other: float      # reconstruction ↔ the nearest other photo (nan when none)
    toon_distance: float      # toonified image ↔ its own photo

    @property
    def recognised(self) -> bool:
        """The reconstruction is nearer its own photo than anyone else's."""
        return bool(self.own_distance < self.nearest_other)


def measure_toonify_identity(toonifier, photos: dict[str, Image.Image], spec, config=None,
                             class_idx: int | None = None) -> list[IdentityRow]:
    """Toonify every photo with ``spec`` and score it: PSNR/SSIM of the base model's
    reconstruction against the aligned photo, whether dlib finds the reconstruction and the
    toonified image as faces, and descriptor distances to the photos (see IdentityRow)."""
    from .project import image_to_tensor, psnr, ssim

    done = []
    for name, photo in photos.items():
        start = time.perf_counter()
        result = toonifier.toonify(photo, spec, config, class_idx=class_idx)
        seconds = time.perf_counter() - start
        channels = toonifier.G_base.img_channels
        a = image_to_tensor(result.aligned, channels=channels)
        b = image_to_tensor(result.reconstruction, channels=channels)
        done.append((name, photo, result, seconds, psnr(b, a), float(ssim(b, a))))
    own = {name: face_descriptor(photo) for name, photo, *_ in done}
    rows = []
    for name, photo, result, seconds, p, s in done:
        rec, toon = face_descriptor(result.reconstruction), face_descriptor(result.toon)
        others = [distance(rec, d) for other, d in own.items()
                  if other != name and d is not None and rec is not None]
        rows.append(IdentityRow(
            name, p, s, seconds, rec is not None, toon is not None,
            distance(rec, own[name]) if rec is not None and own[name] is not None else float("nan"),
            min(others) if others else float("nan"),
            distance(toon, own[name]) if toon is not None and own[name] is not None else float("nan")))
    return rows
