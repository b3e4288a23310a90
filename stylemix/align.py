"""Photo → FFHQ-style aligned face: robust image loading, dlib landmarks, the FFHQ crop.

A model trained on FFHQ only understands faces placed the way FFHQ places them: eyes level, at
fixed positions, the face filling a fixed fraction of the square.  The alignment below builds an
oriented square from the eye and mouth landmarks and resamples the photo into it, padding with a
blurred reflection where the square leaves the photo.  dlib's landmark model ships in the PyPI
package ``face_recognition_models``; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import io
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy.ndimage import gaussian_filter

from .errors import ImageInputError, NoFaceError

MAX_PIXELS = 40_000_000
DETECT_MAX_SIDE = 1600  # photos are detected on a copy no larger than this

_models_lock = threading.Lock()
_models: dict = {}


# -- loading -----------------------------------------------------------------------------------

def load_image(source, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Any photo a user may upload → 8-bit RGB PIL image, upright per its EXIF orientation.

    Accepts a path, bytes, a file object, a numpy array or a PIL image. Transparent areas become
    white, 16-bit images are scaled (not clipped), animated images give their first frame.
    """
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, (bytes, bytearray)):
            source = io.BytesIO(source)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(source)
                _check_size(image, max_pixels)
                image.seek(0)  # first frame of animated / multi-page files
                image.load()
        except ImageInputError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageInputError(f"the image is over the limit of {max_pixels / 1e6:.0f} "
                                  "megapixels; send a smaller photo") from None
        except UnidentifiedImageError:
            raise ImageInputError("the file is not an image stylemix can read") from None
        except (OSError, ValueError, SyntaxError, EOFError):
            raise ImageInputError("the image file is truncated or corrupt") from None
    _check_size(image, max_pixels)
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not lose the photo
        pass
    return _to_rgb8(image)


def _check_size(image: Image.Image, max_pixels: int) -> None:
    w, h = image.size
    if w < 1 or h < 1:
        raise ImageInputError("the image is empty (zero pixels)")
    if w * h > max_pixels:
        raise ImageInputError(f"the image has {w}×{h} pixels, over the limit of "
                              f"{max_pixels / 1e6:.0f} megapixels; send a smaller photo")


def _to_rgb8(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or arr.max() > 255 else 255.0
        return _from_array(np.clip(arr / top, 0, 1))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _from_array(arr: np.ndarray) -> Image.Image:
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or arr.size == 0:
        raise ImageInputError(f"an image array must be H×W, H×W×3 or H×W×4, not {list(arr.shape)}")
    if arr.dtype == np.uint16:
        arr = arr / 65535.0
    if arr.dtype.kind == "f":
        arr = np.round(np.clip(arr, 0, 1) * 255)
    arr = arr.astype(np.uint8)
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2] if arr.ndim == 3 else 2]
    return _to_rgb8(Image.fromarray(arr, mode))


# -- detection ---------------------------------------------------------------------------------

@dataclass
class DetectedFace:
    box: tuple[int, int, int, int]   # left, top, right, bottom in photo pixels
    score: float
    landmarks: np.ndarray            # (68, 2) x, y in photo pixels

    @property
    def area(self) -> int:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


def _dlib_models():
    """dlib's detector and 68-point predictor, loaded once (the .dat file is ~100 MB)."""
    with _models_lock:
        if not _models:
            try:
                import dlib
            except ImportError:
                raise ImageInputError("face alignment needs dlib: pip install dlib-bin") from None
            spec = importlib.util.find_spec("face_recognition_models")
            dat = (Path(spec.submodule_search_locations[0]) / "models" /
                   "shape_predictor_68_face_landmarks.dat") if spec else None
            if dat is None or not dat.is_file():
                raise ImageInputError("face alignment needs the landmark model: "
                                      "pip install face_recognition_models")
            _models["detector"] = dlib.get_frontal_face_detector()
            _models["predictor"] = dlib.shape_predictor(str(dat))
            _models["rect"] = dlib.rectangle
        return _models


def detect_faces(image: Image.Image) -> list[DetectedFace]:
    """Faces with landmarks, largest first. Upsampling (for small faces) only if none is found:
    it also finds false faces, such as the mission patch on scikit-image's astronaut."""
    models = _dlib_models()
    scale = min(1.0, DETECT_MAX_SIDE / max(image.size))
    small = image if scale == 1.0 else image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    arr = np.asarray(small.convert("RGB"))
    rects, scores = [], []
    for upsample in (0, 1):
        rects, scores, _ = models["detector"].run(arr, upsample, 0.0)
        if len(rects):
            break
    faces = []
    for rect, score in zip(rects, scores):
        shape = models["predictor"](arr, rect)
        pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64) / scale
        box = tuple(int(round(v / scale)) for v in (rect.left(), rect.top(), rect.right(), rect.bottom()))
        faces.append(DetectedFace(box, float(score), pts))
    return sorted(faces, key=lambda f: f.area, reverse=True)


# -- FFHQ alignment ----------------------------------------------------------------------------

@dataclass
class AlignedFace:
    image: Image.Image        # output_size × output_size RGB
    quad: np.ndarray          # (4, 2) the oriented square in photo pixels: TL, BL, BR, TR
    landmarks: np.ndarray     # (68, 2) in photo pixels
    faces_in_photo: int = 1   # how many faces the photo held (the UI says so when > 1)

    @property
    def landmarks_aligned(self) -> np.ndarray:
        """Landmarks in output pixels (the quad maps affinely onto the output square)."""
        size = self.image.width
        tl, bl, _, tr = self.quad
        basis = np.stack([(tr - tl) / size, (bl - tl) / size], axis=1)  # output px → photo px
        return np.linalg.solve(basis, (self.landmarks - tl).T).T


def ffhq_quad(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """The oriented square FFHQ crops, from eye and mouth landmarks; and its side length."""
    lm = np.asarray(landmarks, dtype=np.float64)
    eye_left, eye_right = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]   # horizontal axis, tilted by the face
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    return quad, float(np.hypot(*x) * 2)


def align_face(image: Image.Image, landmarks: np.ndarray, output_size: int = 1024) -> AlignedFace:
    """Resample the photo into the FFHQ square (shrink, crop, pad with blurred reflection)."""
    original_landmarks = np.asarray(landmarks, dtype=np.float64)
    quad, qsize = ffhq_quad(original_landmarks)
    original_quad = quad.copy()
    img = image.convert("RGB")

    shrink = int(np.floor(qsize / output_size * 0.5))
    if shrink > 1:  # downscale very large faces first, with antialiasing
        img = img.resize((int(np.rint(img.width / shrink)), int(np.rint(img.height / shrink))), Image.LANCZOS)
        quad, qsize = quad / shrink, qsize / shrink

    border = max(int(np.rint(qsize * 0.1)), 3)
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    crop = (max(lo[0] - border, 0), max(lo[1] - border, 0),
            min(hi[0] + border, img.width), min(hi[1] + border, img.height))
    if crop[2] - crop[0] < img.width or crop[3] - crop[1] < img.height:
        img = img.crop(crop)
        quad = quad - crop[:2]

    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    pad = [max(-lo[0] + border, 0), max(-lo[1] + border, 0),
           max(hi[0] - img.width + border, 0), max(hi[1] - img.height + border, 0)]
    if max(pad) > border - 4:
        img, quad = _pad_reflect(img, quad, qsize, pad)

    transform_size = max(output_size, min(4 * output_size, 4096))
    img = img.transform((transform_size, transform_size), Image.QUAD, (quad + 0.5).flatten(),
                        Image.BILINEAR)
    if transform_size != output_size:
        img = img.resize((output_size, output_size), Image.LANCZOS)
    return AlignedFace(img, original_quad, original_landmarks)


def _pad_reflect(img: Image.Image, quad: np.ndarray, qsize: float, pad: list[int]):
    """Reflect-pad, then fade the padding towards a blur and the mean colour (no hard mirror)."""
    pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
    left, top, right, bottom = (int(v) for v in pad)
    arr = np.pad(np.float32(img), ((top, bottom), (left, right), (0, 0)), "reflect")
    h, w, _ = arr.shape
    y, x = np.ogrid[:h, :w]
    x, y = np.float32(x)[..., None], np.float32(y)[..., None]
    mask = np.maximum(1.0 - np.minimum(x / max(left, 1), (w - 1 - x) / max(right, 1)),
                      1.0 - np.minimum(y / max(top, 1), (h - 1 - y) / max(bottom, 1)))
    blur = qsize * 0.02
    arr += (gaussian_filter(arr, [blur, blur, 0]) - arr) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(mask, 0.0, 1.0)
    out = Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)), "RGB")
    return out, quad + [left, top]


def align(source, output_size: int = 1024, all_faces: bool = False,
          max_pixels: int = MAX_PIXELS) -> list[AlignedFace]:
    """Load a photo and align its largest face (or every face, largest first)."""
    image = load_image(source, max_pixels)
    faces = detect_faces(image)
    if not faces:
        raise NoFaceError("no face found in the photo: use a well-lit, roughly frontal face")
    chosen = faces if all_faces else faces[:1]
    aligned = [align_face(image, f.landmarks, output_size) for f in chosen]
    for face in aligned:
        face.faces_in_photo = len(faces)
    return aligned
