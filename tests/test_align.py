"""Alignment on a real photo (scikit-image's public-domain astronaut) and on bad uploads."""

import io
import struct
import threading
import zlib

import numpy as np
import pytest
from PIL import Image
from skimage import data

import stylemix
import stylemix.align as A
from stylemix.align import align, detect_faces, ffhq_quad, load_image

SIZE = 256
ORIENTATION = 0x0112  # the EXIF tag


@pytest.fixture(scope="module")
def astronaut():
    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="module")
def aligned(astronaut):
    return align(astronaut, output_size=SIZE)[0]


def _eyes(landmarks):
    return landmarks[36:42].mean(0), landmarks[42:48].mean(0)


def _save(image: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _mean_abs_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).mean())


def _astronaut_face_on_canvas(astronaut, face_width, canvas_size, at):
    """The astronaut's head, resized so the crop is ``face_width`` px wide, on a grey canvas."""
    head = astronaut.crop((120, 0, 300, 250))
    head = head.resize((face_width, round(face_width * 250 / 180)), Image.LANCZOS)
    canvas = Image.new("RGB", canvas_size, (200, 200, 200))
    canvas.paste(head, at)
    return canvas


# -- geometry ----------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [SIZE, 1024])
def test_eyes_land_where_ffhq_puts_them(astronaut, size):
    face = align(astronaut, output_size=size)[0]
    lm = face.landmarks
    _, qsize = ffhq_quad(lm)   # qsize = 2·hypot(x)
    left, right = _eyes(lm)
    eye_to_mouth = (lm[48] + lm[54]) / 2 - (left + right) / 2
    half_gap = size / 2 * np.hypot(*(right - left)) / qsize        # (S/2)·|eye_to_eye|/(2·|x|)
    eyes_y = size / 2 - size * 0.1 * np.hypot(*eye_to_mouth) / qsize  # c is 0.1·eye_to_mouth below
    got_left, got_right = _eyes(face.landmarks_aligned)
    assert got_left == pytest.approx([size / 2 - half_gap, eyes_y], abs=1.0)
    assert got_right == pytest.approx([size / 2 + half_gap, eyes_y], abs=1.0)
    assert abs(got_left[1] - got_right[1]) <= 1.0  # eye line level
    # FFHQ's framing for a face this shape: eyes at 3/8 and 5/8 of the width, just above centre.
    assert got_left[0] / size == pytest.approx(0.375, abs=0.01)
    assert got_right[0] / size == pytest.approx(0.625, abs=0.01)
    assert 0.44 < got_left[1] / size < 0.5


def test_landmark_detector_agrees_on_the_aligned_face(aligned):
    # Independent of the geometry above: look at the output pixels again.
    expected_left, expected_right = _eyes(aligned.landmarks_aligned)
    seen_left, seen_right = _eyes(detect_faces(aligned.image)[0].landmarks)
    assert np.abs(seen_left - expected_left).max() <= 4
    assert np.abs(seen_right - expected_right).max() <= 4
    assert abs(seen_left[1] - seen_right[1]) <= 1.0


def test_quad_corners_map_to_output_corners(aligned):
    corners = A.AlignedFace(aligned.image, aligned.quad, aligned.quad).landmarks_aligned
    assert corners == pytest.approx(np.array([[0, 0], [0, SIZE], [SIZE, SIZE], [SIZE, 0]]), abs=1e-9)


def test_padding_where_the_square_leaves_the_photo(astronaut, aligned):
    # Cut the photo just left of and above the face: the FFHQ square now reaches outside it.
    face = align(astronaut.crop((160, 50, 512, 512)), output_size=SIZE)[0]
    out = np.asarray(face.image, np.float64)
    corner = out[:20, :20]   # outside the cut photo: filled, not left black
    assert corner.sum(axis=2).min() > 30 and corner.mean() > 50
    assert corner.std(axis=(0, 1)).max() < 25  # blurred towards the median colour, not a mirror
    centre = slice(SIZE // 4, 3 * SIZE // 4)
    assert _mean_abs_diff(out[centre, centre], np.asarray(aligned.image)[centre, centre]) < 6


def test_edge_ramp_ignores_sides_without_padding():
    ramp = A._edge_ramp(np.arange(10, dtype=np.float32), 0, 4)
    assert ramp[0] <= 0 and ramp[-1] == 1  # column 0 is photo, not padding


def test_large_photo_is_detected_on_a_smaller_copy(astronaut):
    big = astronaut.resize((2048, 2048), Image.LANCZOS)  # > DETECT_MAX_SIDE
    small_lm = detect_faces(astronaut)[0].landmarks
    big_face = detect_faces(big)[0]
    assert np.abs(big_face.landmarks - ((small_lm + 0.5) * 4 - 0.5)).max() < 8  # photo pixels
    assert big_face.box[2] - big_face.box[0] > 300
    face = align(big, output_size=128)[0]  # also shrinks before the transform (qsize ≈ 700)
    left, right = _eyes(face.landmarks_aligned)
    assert left == pytest.approx([48, right[1]], abs=1.5) and right[0] == pytest.approx(80, abs=1.5)


# -- EXIF orientation --------------------------------------------------------------------------

def _sideways(tag: int, fmt: str, **kw) -> bytes:
    """The astronaut stored turned 90° anticlockwise (np.rot90), with an Orientation tag."""
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(data.astronaut())))
    exif = Image.Exif()
    exif[ORIENTATION] = tag
    return _save(stored, fmt, exif=exif.tobytes(), **kw)


def test_exif_rotated_photo_aligns_like_the_upright_one(aligned):
    # Tag 6 says "rotate 90° clockwise to display", undoing np.rot90. Lossless PNG: identical.
    face = align(_sideways(6, "PNG"), output_size=SIZE)[0]
    assert _mean_abs_diff(face.image, aligned.image) < 1


def test_exif_rotated_jpeg_is_shown_upright():
    upright = data.astronaut()
    assert _mean_abs_diff(load_image(_sideways(6, "JPEG", quality=95)), upright) < 3
    assert _mean_abs_diff(load_image(_sideways(8, "JPEG", quality=95)), upright) > 50  # wrong tag
    with pytest.raises(stylemix.NoFaceError, match="no face found"):  # tag ignored → face sideways → not found
        align(_save(Image.fromarray(np.ascontiguousarray(np.rot90(upright))), "JPEG"))


# -- image modes -------------------------------------------------------------------------------

def _rgba_with_clear_border(im):
    rgba = im.convert("RGBA")
    alpha = np.zeros(im.size[::-1], np.uint8)
    alpha[40:-40, 40:-40] = 255
    rgba.putalpha(Image.fromarray(alpha))
    return _save(rgba)


@pytest.mark.parametrize("convert", [
    _rgba_with_clear_border,
    lambda im: _save(im.convert("L")),
    lambda im: _save(Image.fromarray(np.asarray(im.convert("L"), np.uint16) * 257)),  # I;16 PNG
    lambda im: _save(im.convert("CMYK"), "JPEG", quality=95),
    lambda im: _save(im.convert("P", palette=Image.Palette.ADAPTIVE), "GIF", transparency=0),
    lambda im: np.asarray(im, np.float32) / 255,
    lambda im: np.asarray(im.convert("L"), np.uint16) * 257,
    lambda im: np.asarray(im.convert("RGBA")),
], ids=["rgba", "L", "I;16", "cmyk-jpeg", "P-transparency", "float", "uint16", "rgba-array"])
def test_image_modes_align(astronaut, convert):
    face = align(convert(astronaut), output_size=SIZE)[0]
    assert face.image.size == (SIZE, SIZE) and face.image.mode == "RGB"
    assert face.landmarks_aligned[36:48].mean(0) == pytest.approx([SIZE / 2, 0.47 * SIZE], abs=6)


def test_transparency_becomes_white(astronaut):
    img = np.asarray(load_image(_rgba_with_clear_border(astronaut)))
    assert (img[:40] == 255).all() and (img[-40:] == 255).all()
    assert np.array_equal(img[40:-40, 40:-40], data.astronaut()[40:-40, 40:-40])
    half = Image.new("LA", (4, 4), (0, 128))  # black at half opacity over white → mid grey
    assert np.asarray(load_image(_save(half)))[0, 0] == pytest.approx([127, 127, 127], abs=1)


def test_greyscale_and_cmyk_become_rgb(astronaut):
    grey = np.asarray(load_image(_save(astronaut.convert("L"))))
    assert grey.shape == (512, 512, 3) and (grey[..., 0] == grey[..., 2]).all()
    cmyk = load_image(_save(astronaut.convert("CMYK"), "JPEG", quality=95))
    assert cmyk.mode == "RGB" and _mean_abs_diff(cmyk, data.astronaut()) < 6


def test_sixteen_bit_is_scaled_not_clipped():
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)  # 8-bit value k → 257·k
    png = _save(Image.fromarray(ramp))
    assert Image.open(io.BytesIO(png)).mode == "I;16"
    for img in (load_image(png), load_image(ramp)):
        assert np.array_equal(np.asarray(img)[..., 0], np.arange(256).reshape(16, 16))


def test_arrays_of_other_types():
    assert np.asarray(load_image(np.ones((4, 4), bool)))[0, 0, 0] == 255
    assert np.asarray(load_image(np.full((4, 4, 3), 0.5, np.float32)))[0, 0, 0] == 128
    assert np.asarray(load_image(np.full((4, 4), np.nan)))[0, 0, 0] == 0
    assert np.asarray(load_image(Image.fromarray(np.full((4, 4), 0.5, np.float32))))[0, 0, 0] == 128
    with pytest.raises(stylemix.ImageInputError, match="H×W, H×W×3 or H×W×4"):
        load_image(np.zeros((4, 4, 2), np.uint8))


# -- animated and multi-page -------------------------------------------------------------------

def test_animated_gif_uses_first_frame(astronaut):
    first = astronaut.resize((256, 256))
    second = Image.new("RGB", (256, 256), (0, 128, 0))
    gif = _save(first, "GIF", save_all=True, append_images=[second], duration=100)
    assert Image.open(io.BytesIO(gif)).n_frames == 2
    assert len(align(gif, output_size=64)) == 1
    # and the other way round: a face-less first frame wins over a face in the second
    gif = _save(second, "GIF", save_all=True, append_images=[first], duration=100)
    with pytest.raises(stylemix.NoFaceError, match="no face found"):
        align(gif)


def test_multipage_tiff_uses_first_page():
    pages = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    tiff = _save(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    assert tuple(np.asarray(load_image(tiff))[0, 0]) == (255, 0, 0)


# -- refusals ----------------------------------------------------------------------------------

@pytest.mark.parametrize("photo", [
    lambda: data.coffee(),
    lambda: np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8),
], ids=["coffee", "noise"])
def test_no_face(photo):
    with pytest.raises(stylemix.NoFaceError, match="no face found"):
        align(photo())


@pytest.mark.parametrize("content,needle", [
    (b"this is not an image", "the file is not an image stylemix can read"),
    (b"", "the file is not an image stylemix can read"),
])
def test_not_an_image(content, needle):
    with pytest.raises(stylemix.ImageInputError, match=needle):
        load_image(content)


def test_truncated_png(astronaut):
    raw = _save(astronaut)
    with pytest.raises(stylemix.ImageInputError, match="truncated or corrupt"):
        load_image(raw[: len(raw) // 2])


def test_missing_file_message_names_no_path(tmp_path):
    missing = tmp_path / "secret_dir" / "photo.png"
    with pytest.raises(stylemix.ImageInputError, match="could not be opened") as err:
        load_image(missing)
    assert "secret_dir" not in str(err.value) and "\n" not in str(err.value)


def test_pixel_limit_is_checked_before_decoding():
    # A PNG header that declares 100000 × 100000 pixels, with no pixel data behind it: had it
    # been decoded, the message would say "truncated".
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
    bomb = b"\x89PNG\r\n\x1a\n" + header + chunk(b"IEND", b"")
    with pytest.raises(stylemix.ImageInputError, match="over the limit of 40 megapixels"):
        load_image(bomb)
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 8000, 6000, 8, 2, 0, 0, 0))  # 48 MP, under PIL's guard
    with pytest.raises(stylemix.ImageInputError, match="8000×6000 pixels, over the limit of 40 megapixels"):
        load_image(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IEND", b""))
    with pytest.raises(stylemix.ImageInputError, match="over the limit of 10,000 pixels"):
        align(_save(Image.new("RGB", (200, 200))), max_pixels=10_000)
    with pytest.raises(stylemix.ImageInputError, match="over the limit of 10,000 pixels"):
        load_image(np.zeros((200, 200, 3), np.uint8), max_pixels=10_000)


def test_zero_size_image():
    with pytest.raises(stylemix.ImageInputError, match="empty"):
        load_image(Image.new("RGB", (0, 0)))


def test_missing_landmark_model_gives_an_install_hint(monkeypatch):
    assert A.landmark_model_path().name == "shape_predictor_68_face_landmarks.dat"
    monkeypatch.setattr(A, "_models", {})
    monkeypatch.setattr(A, "landmark_model_path", lambda: None)
    with pytest.raises(stylemix.ImageInputError, match="pip install face_recognition_models"):
        align(data.astronaut())


# -- several faces, small faces, threads -------------------------------------------------------

def test_several_faces_largest_first(astronaut):
    canvas = _astronaut_face_on_canvas(astronaut, 360, (900, 520), (500, 0))
    canvas.paste(astronaut.crop((120, 0, 300, 250)), (20, 100))  # the same head at half size
    one = align(canvas, output_size=64)
    both = align(canvas, output_size=64, all_faces=True)
    assert len(one) == 1 and len(both) == 2
    sizes = [np.hypot(*(f.quad[3] - f.quad[0])) for f in both]
    assert sizes[0] == pytest.approx(2 * sizes[1], rel=0.1)
    assert both[0].quad[:, 0].mean() > 500 > both[1].quad[:, 0].mean()  # the big one is right
    assert np.allclose(one[0].quad, both[0].quad)
    assert one[0].faces_in_photo == both[1].faces_in_photo == 2


def test_tiny_face_is_found_by_the_upsampling_fallback(astronaut):
    canvas = _astronaut_face_on_canvas(astronaut, 80, (400, 300), (170, 80))
    detector = A._dlib_models()["detector"]
    assert len(detector.run(np.asarray(canvas), 0, 0.0)[0]) == 0  # too small without upsampling
    faces = detect_faces(canvas)
    assert len(faces) == 1 and 35 <= faces[0].box[2] - faces[0].box[0] <= 50
    assert len(align(canvas, output_size=64)) == 1


def test_upsampling_is_only_a_fallback(astronaut):
    # At upsample 1 dlib also reports the mission patch; at 0 only the face.
    faces = detect_faces(astronaut)
    assert len(faces) == 1 and faces[0].score > 1


def test_concurrent_alignment_gives_the_same_result(astronaut, aligned):
    results, errors = [], []

    def work():
        try:
            results.append(np.asarray(align(astronaut, output_size=SIZE)[0].image))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    assert all(np.array_equal(r, np.asarray(aligned.image)) for r in results)
