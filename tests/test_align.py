"""Alignment on a real photo (scikit-image's public-domain astronaut) and on bad uploads."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from skimage import data

import stylemix
from stylemix.align import align, detect_faces, ffhq_quad, load_image

SIZE = 256


@pytest.fixture(scope="module")
def astronaut():
    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="module")
def aligned(astronaut):
    return align(astronaut, output_size=SIZE)[0]


def _eyes(landmarks):
    return landmarks[36:42].mean(0), landmarks[42:48].mean(0)


def _png(image: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", **kw)
    return buf.getvalue()


def test_eyes_land_where_ffhq_puts_them(aligned):
    # Where the procedure puts the eyes of THIS face: half-way ± |eye_to_eye| / |quad side|.
    lm = aligned.landmarks
    quad, qsize = ffhq_quad(lm)
    left, right = _eyes(lm)
    half_gap = np.hypot(*(right - left)) / qsize / 2 * SIZE
    eye_to_mouth = (lm[48] + lm[54]) / 2 - (left + right) / 2
    y_expected = SIZE / 2 - 0.1 * np.hypot(*eye_to_mouth) / qsize * SIZE
    got_left, got_right = _eyes(aligned.landmarks_aligned)
    assert got_left == pytest.approx([SIZE / 2 - half_gap, y_expected], abs=1.0)
    assert got_right == pytest.approx([SIZE / 2 + half_gap, y_expected], abs=1.0)
    # FFHQ's framing: eyes at about 37.5 % and 62.5 % of the width, just above the middle.
    assert got_left[0] / SIZE == pytest.approx(0.375, abs=0.02)
    assert got_right[0] / SIZE == pytest.approx(0.625, abs=0.02)
    assert 0.44 < got_left[1] / SIZE < 0.5
    # An independent check: the landmark detector run on the aligned face agrees (± 4 px).
    seen_left, seen_right = _eyes(detect_faces(aligned.image)[0].landmarks)
    assert np.abs(seen_left - got_left).max() <= 4 and np.abs(seen_right - got_right).max() <= 4
    assert abs(seen_left[1] - seen_right[1]) <= 1.5  # eye line level


def test_exif_rotated_photo_aligns_like_the_upright_one(astronaut, aligned):
    rotated = astronaut.rotate(90, expand=True)  # stored sideways; EXIF says "rotate 270 CW"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: display after rotating 90° clockwise
    raw = io.BytesIO()
    rotated.save(raw, format="JPEG", quality=95, exif=exif.tobytes())
    face = align(raw.getvalue(), output_size=SIZE)[0]
    diff = np.abs(np.asarray(face.image, float) - np.asarray(aligned.image, float)).mean()
    assert diff < 4


@pytest.mark.parametrize("convert", [
    lambda im: _png(im.convert("RGBA")),
    lambda im: _png(im.convert("L")),
    lambda im: _png(Image.fromarray((np.asarray(im.convert("L"), np.uint16) * 257)).convert("I;16")),
    lambda im: np.asarray(im, np.float32) / 255,
    lambda im: np.asarray(im.convert("L"), np.uint16) * 257,
])
def test_image_modes(astronaut, convert):
    face = align(convert(astronaut), output_size=SIZE)[0]
    assert face.image.size == (SIZE, SIZE) and face.image.mode == "RGB"


def test_cmyk_jpeg(astronaut):
    raw = io.BytesIO()
    astronaut.convert("CMYK").save(raw, format="JPEG")
    assert load_image(raw.getvalue()).mode == "RGB"
    assert len(align(raw.getvalue(), output_size=SIZE)) == 1


def test_sixteen_bit_is_scaled_not_clipped():
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
    img = load_image(_png(Image.fromarray(ramp).convert("I;16")))
    arr = np.asarray(img)[..., 0]
    assert arr.min() == 0 and arr.max() == 255 and len(np.unique(arr)) > 200


def test_animated_gif_uses_first_frame(astronaut):
    first = astronaut.resize((256, 256))
    second = Image.new("RGB", (256, 256), (0, 128, 0))
    raw = io.BytesIO()
    first.save(raw, format="GIF", save_all=True, append_images=[second], duration=100)
    assert len(align(raw.getvalue(), output_size=64)) == 1


def test_no_face():
    with pytest.raises(stylemix.NoFaceError, match="no face found"):
        align(data.coffee())


@pytest.mark.parametrize("content,needle", [
    (b"this is not an image", "not an image"),
    (b"", "not an image"),
])
def test_not_an_image(content, needle):
    with pytest.raises(stylemix.ImageInputError, match=needle):
        load_image(content)


def test_truncated_png(astronaut):
    raw = _png(astronaut)
    with pytest.raises(stylemix.ImageInputError, match="truncated or corrupt"):
        load_image(raw[: len(raw) // 2])


def test_pixel_limit_is_checked_before_decoding():
    # A PNG header that declares 100000 × 100000 pixels, with no pixel data behind it.
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
    bomb = b"\x89PNG\r\n\x1a\n" + header + chunk(b"IEND", b"")
    with pytest.raises(stylemix.ImageInputError, match="over the limit of 40 megapixels"):
        load_image(bomb)
    with pytest.raises(stylemix.ImageInputError, match="over the limit"):
        load_image(_png(Image.new("RGB", (200, 200))), max_pixels=10_000)


def test_several_faces_largest_first(astronaut):
    face_crop = astronaut.crop((120, 0, 300, 250))
    canvas = Image.new("RGB", (900, 500), (200, 200, 200))
    canvas.paste(face_crop.resize((180, 250)), (20, 100))
    canvas.paste(face_crop.resize((360, 500)), (500, 0))
    one = align(canvas, output_size=64)
    both = align(canvas, output_size=64, all_faces=True)
    assert len(one) == 1 and len(both) == 2
    sizes = [np.hypot(*(f.quad[3] - f.quad[0])) for f in both]
    assert sizes[0] > 1.5 * sizes[1]
    assert np.allclose(one[0].quad, both[0].quad)
    assert one[0].faces_in_photo == 2


def test_tiny_face_is_found(astronaut):
    # A face ~50 px wide: dlib finds it only with upsampling, the fallback.
    face_crop = astronaut.crop((120, 0, 300, 250)).resize((80, 111), Image.LANCZOS)
    canvas = Image.new("RGB", (400, 300), (200, 200, 200))
    canvas.paste(face_crop, (170, 80))
    assert len(align(canvas, output_size=64)) == 1
