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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy.ndimage import gaussian_filter

from .errors import ImageInputError, NoFaceError

MAX_PIXELS = 40_000_000
DETECT_MAX_SIDE = 1600  # photos are detected on a copy no larger than this
LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"

LANCZOS = Image.Resampling.LANCZOS
BILINEAR = Image.Resampling.BILINEAR

_models_lock = threading.Lock()   # guards loading the models
_detect_lock = threading.Lock()   # dlib's detector object is not safe to share between threads
_models: dict = {}


# -- loading -----------------------------------------------------------------------------------

def load_image(source, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Any photo a user may upload → 8-bit RGB PIL image, upright per its EXIF orientation.

    ``source``: a path, bytes, a file object, a numpy array (H×W, H×W×3, H×W×4; uint8, uint16,
    or float in [0, 1]) or a PIL image.  Transparent areas become white, 16-bit images are
    scaled (not clipped), CMYK is converted.  Of an animated GIF or multi-page TIFF the first
    frame is used (a PIL image passed in is used at its current frame).  The pixel limit is
    checked from the header, before anything is decoded.
    """
    if isinstance(source, np.ndarray):
        if source.ndim in (2, 3):
            _check_size(source.shape[1::-1], max_pixels)
        return _from_array(source)
    if isinstance(source, Image.Image):
        _check_size(source.size, max_pixels)
        return _decoded(lambda: _upright_rgb8(source), max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(source)
    return _decoded(lambda: _open_first_frame(source, max_pixels), max_pixels)


def _open_first_frame(source, max_pixels: int) -> Image.Image:
    """Open, refuse oversize images from the header alone, then decode frame 0 and close."""
    with Image.open(source) as image:
        _check_size(image.size, max_pixels)
        image.seek(0)
        image.load()
        return _upright_rgb8(image)


def _decoded(decode, max_pixels: int) -> Image.Image:
    """Run ``decode`` and turn every way a user's file can fail into one clear sentence.

    PIL's own bomb guard fires inside Image.open, before our check, for images over twice
    Image.MAX_IMAGE_PIXELS (the warning over once, caught for processes run with -W error).
    The warning filters are not changed: that is process-wide state, unsafe in a threaded server.
    """
    try:
        return decode()
    except ImageInputError:
        raise
    except Image.DecompressionBombError:
        raise _over_limit(min(max_pixels, 2 * Image.MAX_IMAGE_PIXELS)) from None
    except Image.DecompressionBombWarning:
        raise _over_limit(min(max_pixels, Image.MAX_IMAGE_PIXELS)) from None
    except UnidentifiedImageError:
        raise ImageInputError("the file is not an image stylemix can read (send a JPEG, PNG or WebP photo)") from None
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        # No path in the message: the app shows it to visitors, and server paths are not theirs.
        raise ImageInputError("the photo file could not be opened") from None
    except MemoryError:
        raise ImageInputError("the image is too large to open; send a smaller photo") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError):
        raise ImageInputError("the image file is truncated or corrupt") from None


def _check_size(size, max_pixels: int) -> None:
    w, h = (int(v) for v in size)
    if w < 1 or h < 1:
        raise ImageInputError("the image is empty (zero pixels)")
    if w * h > max_pixels:
        raise ImageInputError(f"the image has {w}×{h} pixels, over the limit of "
                              f"{_pixel_limit_text(max_pixels)}; send a smaller photo")


def _over_limit(limit: int) -> ImageInputError:
    return ImageInputError(f"the image is over the limit of {_pixel_limit_text(limit)}; "
                           "send a smaller photo")


def _pixel_limit_text(max_pixels: int) -> str:
    if max_pixels >= 1_000_000:
        return f"{round(max_pixels / 1e6, 1):g} megapixels"
    return f"{max_pixels:,} pixels"


def _upright_rgb8(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (a viewer shows the photo that way), then convert to RGB."""
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not lose the photo
        pass
    return _to_rgb8(image)


def _to_rgb8(image: Image.Image) -> Image.Image:
    """Any PIL mode → 8-bit RGB: high-bit-depth scaled down, transparency onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        full_scale = 65535.0 if image.mode.startswith("I;16") else _full_scale(arr, image.mode == "F")
        return _from_array(arr / full_scale)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
            image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _full_scale(arr: np.ndarray, is_float: bool) -> float:
    """The white level of a 32-bit PIL image, guessed from its range: 1 (floats), 255, 65535."""
    top = float(np.nanmax(arr)) if arr.size else 0.0
    if is_float and top <= 1.0:
        return 1.0
    if top <= 255:
        return 255.0
    return 65535.0 if top <= 65535 else top


def _from_array(arr: np.ndarray) -> Image.Image:
    """numpy image → 8-bit RGB: uint16 and other integers scaled by their range, floats in [0, 1]."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or arr.size == 0:
        raise ImageInputError(f"an image array must be H×W, H×W×3 or H×W×4, not {list(arr.shape)}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint16:
        arr = arr / 65535.0
    elif arr.dtype.kind in "iu" and arr.dtype != np.uint8:
        arr = arr / _full_scale(arr, is_float=False)
    elif arr.dtype.kind not in "fu":
        raise ImageInputError(f"an image array must hold numbers, not {arr.dtype}")
    if arr.dtype.kind == "f":
        arr = np.rint(np.clip(np.nan_to_num(arr), 0, 1) * 255)
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2] if arr.ndim == 3 else 2]
    return _to_rgb8(Image.fromarray(arr, mode))


# -- detection ---------------------------------------------------------------------------------

@dataclass
class DetectedFace:
    box: tuple[int, int, int, int]   # left, top, right, bottom in photo pixels
    score: float                     # dlib's detection score (higher: surer)
    landmarks: np.ndarray            # (68, 2) x, y in photo pixels

    @property
    def area(self) -> int:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


def landmark_model_path() -> Path | None:
    """Where face_recognition_models keeps the 68-point model, found without importing it
    (its __init__ imports pkg_resources, which current setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "models" / LANDMARK_MODEL
    return path if path.is_file() else None


def _dlib_models() -> dict:
    """dlib's detector and 68-point predictor, loaded once (the .dat file is ~100 MB)."""
    with _models_lock:
        if not _models:
            try:
                import dlib
            except ImportError:
                raise ImageInputError("face alignment needs dlib: pip install dlib-bin") from None
            path = landmark_model_path()
            if path is None:
                raise ImageInputError("face alignment needs the face landmark model: "
                                      "pip install face_recognition_models")
            try:
                predictor = dlib.shape_predictor(str(path))
            except RuntimeError:
                raise ImageInputError("the face landmark model is damaged: "
                                      "pip install --force-reinstall face_recognition_models") from None
            _models.update(detector=dlib.get_frontal_face_detector(), predictor=predictor)
        return _models


def detect_faces(image: Image.Image) -> list[DetectedFace]:
    """Faces with landmarks in the photo's pixels, largest first.

    Large photos are searched on a copy at most DETECT_MAX_SIDE px long (faster, and dlib's
    detector needs no more).  Upsampling, which finds faces under ~80 px, is only a fallback:
    it also finds false faces, such as the mission patch on scikit-image's astronaut.
    """
    models = _dlib_models()
    if image.mode != "RGB":
        image = image.convert("RGB")
    small = _downscaled(image, DETECT_MAX_SIDE)
    arr = np.asarray(small)
    sx, sy = small.width / image.width, small.height / image.height
    with _detect_lock:
        for upsample in (0, 1):
            rects, scores, _ = models["detector"].run(arr, upsample, 0.0)
            if len(rects):
                break
        shapes = [models["predictor"](arr, rect) for rect in rects]
    faces = []
    for rect, score, shape in zip(rects, scores, shapes):
        pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        box = np.array([[rect.left(), rect.top()], [rect.right(), rect.bottom()]], dtype=np.float64)
        box = np.rint(_to_original(box, sx, sy)).astype(int).ravel()
        faces.append(DetectedFace(tuple(int(v) for v in box), float(score), _to_original(pts, sx, sy)))
    return sorted(faces, key=lambda f: f.area, reverse=True)


def _downscaled(image: Image.Image, max_side: int) -> Image.Image:
    scale = max_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, LANCZOS)


def _to_original(points: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Pixel coordinates on the downscaled copy → on the photo (pixel centres map to centres)."""
    return (points + 0.5) / [sx, sy] - 0.5


# -- FFHQ alignment ----------------------------------------------------------------------------

@dataclass
class AlignedFace:
    image: Image.Image        # output_size × output_size RGB
    quad: np.ndarray          # (4, 2) the oriented square in photo pixels: TL, BL, BR, TR
    landmarks: np.ndarray     # (68, 2) in photo pixels
    faces_in_photo: int = 1   # how many faces the photo held (the UI says so when > 1)

    @property
    def landmarks_aligned(self) -> np.ndarray:
        """Landmarks in output pixels: the quad's corners TL, BL, BR, TR go to (0, 0), (0, S),
        (S, S), (S, 0) (S = output size).  The quad is a rotated square, so the map is affine."""
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
    """Resample the photo into the FFHQ square: shrink, crop, pad with a blurred reflection,
    then a quad transform at up to 4× the output size, downscaled for antialiasing."""
    if int(output_size) < 1:
        raise ValueError(f"output_size must be a positive number of pixels, not {output_size}")
    output_size = int(output_size)
    original_landmarks = np.asarray(landmarks, dtype=np.float64)
    original_quad, qsize = ffhq_quad(original_landmarks)
    img = image.convert("RGB")

    img, quad, qsize = _shrink(img, original_quad.copy(), qsize, output_size)
    border = max(int(np.rint(qsize * 0.1)), 3)
    img, quad = _crop(img, quad, border)
    img, quad = _pad(img, quad, qsize, border)

    transform_size = max(output_size, min(4 * output_size, 4096))
    img = img.transform((transform_size, transform_size), Image.Transform.QUAD,
                        tuple((quad + 0.5).flatten()), BILINEAR)
    if transform_size != output_size:
        img = img.resize((output_size, output_size), LANCZOS)
    return AlignedFace(img, original_quad, original_landmarks)


def _shrink(img: Image.Image, quad: np.ndarray, qsize: float, output_size: int):
    """Downscale faces over twice the output size first, with antialiasing (bilinear sampling
    in the quad transform would alias)."""
    shrink = int(np.floor(qsize / output_size * 0.5))
    if shrink <= 1:
        return img, quad, qsize
    size = (max(1, int(np.rint(img.width / shrink))), max(1, int(np.rint(img.height / shrink))))
    return img.resize(size, LANCZOS), quad / shrink, qsize / shrink


def _crop(img: Image.Image, quad: np.ndarray, border: int):
    """Keep only the quad plus a border: less to pad and blur."""
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    box = (max(lo[0] - border, 0), max(lo[1] - border, 0),
           min(hi[0] + border, img.width), min(hi[1] + border, img.height))
    if box[2] - box[0] < img.width or box[3] - box[1] < img.height:
        img, quad = img.crop(box), quad - box[:2]
    return img, quad


def _pad(img: Image.Image, quad: np.ndarray, qsize: float, border: int):
    """Where the quad leaves the photo, reflect-pad and fade the padding towards a blur and the
    median colour, so the model sees no hard mirror edge."""
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    pad = np.array([max(-lo[0] + border, 0), max(-lo[1] + border, 0),
                    max(hi[0] - img.width + border, 0), max(hi[1] - img.height + border, 0)])
    if pad.max() <= border - 4:
        return img, quad
    left, top, right, bottom = (int(v) for v in np.maximum(pad, int(np.rint(qsize * 0.3))))
    arr = np.pad(np.float32(img), ((top, bottom), (left, right), (0, 0)), "reflect")
    h, w, _ = arr.shape
    ramp_x = _edge_ramp(np.arange(w, dtype=np.float32), left, right)
    ramp_y = _edge_ramp(np.arange(h, dtype=np.float32), top, bottom)
    mask = np.maximum(ramp_x[None, :], ramp_y[:, None])[..., None]   # 0 inside → 1 at the edges
    blur = qsize * 0.02
    arr += (gaussian_filter(arr, [blur, blur, 0]) - arr) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(mask, 0.0, 1.0)
    out = Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)), "RGB")
    return out, quad + [left, top]


def _edge_ramp(coord: np.ndarray, pad_before: int, pad_after: int) -> np.ndarray:
    """1 − distance to the nearer padded edge, in units of that edge's padding; an edge with no
    padding never counts (its distance is infinite rather than a division by zero)."""
    n = len(coord)
    before = coord / pad_before if pad_before else np.full(n, np.inf, np.float32)
    after = (n - 1 - coord) / pad_after if pad_after else np.full(n, np.inf, np.float32)
    return 1.0 - np.minimum(before, after)


def align(source, output_size: int = 1024, all_faces: bool = False,
          max_pixels: int = MAX_PIXELS) -> list[AlignedFace]:
    """Load a photo and align its largest face (or every face, largest first)."""
    if int(output_size) < 1:
        raise ValueError(f"output_size must be a positive number of pixels, not {output_size}")
    image = load_image(source, max_pixels)
    faces = detect_faces(image)
    if not faces:
        raise NoFaceError("no face found in the photo: use a well-lit, roughly frontal face")
    chosen = faces if all_faces else faces[:1]
    aligned = [align_face(image, f.landmarks, output_size) for f in chosen]
    for face in aligned:
        face.faces_in_photo = len(faces)
    return aligned
