"""Uploads: every readable image becomes a finite input of the right shape; anything else
is an UploadError with a sentence, never another exception."""
import io
import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from resnet_viz.data.upload import (DIGITS_MEAN, DIGITS_STD, MAX_UPLOAD_BYTES, NORMALISATION,
                               UploadError, image_to_input)

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
# (format, mode) pairs each writer supports.
COMBOS = [("PNG", m) for m in ("L", "RGB", "RGBA", "P", "LA", "I;16", "1")] + \
         [("JPEG", "L"), ("JPEG", "RGB"), ("JPEG", "CMYK"), ("GIF", "P"), ("GIF", "L"),
          ("BMP", "1"), ("BMP", "L"), ("BMP", "P"), ("BMP", "RGB"), ("WEBP", "RGB"), ("WEBP", "RGBA")]


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _digit_one(size=(60, 80), mode="L", ink=0, paper=255, stroke=8) -> Image.Image:
    """A dark vertical stroke on light paper, drawn in grey then converted to ``mode``."""
    img = Image.new("L", size, paper)
    w, h = size
    ImageDraw.Draw(img).line([(w // 2, h // 6), (w // 2, 5 * h // 6)], fill=ink, width=max(1, w // stroke))
    if mode == "I;16":
        return Image.fromarray(np.asarray(img, np.uint16) * 257)
    return img.convert(mode)


@pytest.mark.parametrize("fmt,mode", COMBOS)
@pytest.mark.parametrize("shape", SHAPES)
def test_every_format_and_mode_gives_a_finite_input(fmt, mode, shape):
    x = image_to_input(_encode(_digit_one(mode=mode), fmt), shape)
    assert x.shape == (1, *shape) and x.dtype == torch.float32 and torch.isfinite(x).all()


@pytest.mark.parametrize("size", [(1, 1), (3000, 2), (2, 3000), (7, 5), (999, 1001)])
@pytest.mark.parametrize("shape", SHAPES)
def test_odd_sizes_and_aspects(size, shape):
    x = image_to_input(_encode(_digit_one(size=size), "PNG"), shape)
    assert x.shape == (1, *shape) and torch.isfinite(x).all()


def test_digit_looks_like_sklearn_digits():
    x = image_to_input(_encode(_digit_one(stroke=3), "PNG"), (1, 8, 8))[0, 0]
    lo, hi = (0 - DIGITS_MEAN) / DIGITS_STD, (1 - DIGITS_MEAN) / DIGITS_STD
    assert x.min() == pytest.approx(lo, abs=1e-5)            # background is the 0 of 0..16
    assert x.max() == pytest.approx(hi, abs=1e-5)            # full-strength strokes: 16
    assert x[:, 3:5].mean() > 0 > x[:, :2].mean()            # stroke in the middle, bright


def test_light_on_dark_is_not_inverted_and_blank_is_background():
    dark = image_to_input(_encode(_digit_one(ink=255, paper=0), "PNG"), (1, 8, 8))
    light = image_to_input(_encode(_digit_one(), "PNG"), (1, 8, 8))
    torch.testing.assert_close(dark, light, atol=0.05, rtol=0)
    blank = image_to_input(_encode(Image.new("L", (20, 20), 255), "PNG"), (1, 8, 8))
    assert torch.allclose(blank, torch.full_like(blank, -DIGITS_MEAN / DIGITS_STD))


@pytest.mark.parametrize("stroke", [(0, 0, 0, 255), (255, 255, 255, 255)])
def test_transparent_background_contrasts_with_the_strokes(stroke):
    img = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([(20, 5), (20, 35)], fill=stroke, width=6)
    x = image_to_input(_encode(img, "PNG"), (1, 8, 8))[0, 0]
    assert x[:, 3:5].mean() > 1.0 and x[:, :2].max() < -0.5  # strokes visible either way


def test_cifar_standardisation_per_channel():
    img = Image.new("RGB", (50, 40), (255, 0, 128))
    mean, std = NORMALISATION["cifar10"]
    x = image_to_input(_encode(img, "PNG"), (3, 32, 32), mean=mean, std=std)[0]
    expect = [(v / 255 - m) / s for v, m, s in zip((255, 0, 128), mean, std)]
    assert [float(c.mean()) for c in x] == pytest.approx(expect, abs=1e-4)


def _png_with_size(width: int, height: int) -> bytes:
    """A valid tiny PNG whose header claims ``width`` × ``height`` (a decompression bomb)."""
    data = bytearray(_encode(Image.new("L", (8, 8)), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


@pytest.mark.parametrize("bad,message", [
    (b"", "empty"),
    (b"%PDF-1.4 not an image at all", "not an image PIL can read"),
    (_encode(_digit_one(), "PNG")[:-40], "damaged or cut short"),
    (_encode(_digit_one(size=(300, 300)), "JPEG")[:300], "damaged or cut short"),
    (_png_with_size(5000, 5000), "5000×5000 pixels; the limit is 16 megapixels"),
    (_png_with_size(60000, 60000), "megapixels"),
    (_encode(Image.new("L", (8, 8)), "TIFF"), "not an image PIL can read"),
])
def test_bad_uploads_raise_upload_error_with_a_sentence(bad, message):
    with pytest.raises(UploadError, match=message):
        image_to_input(bad, (1, 8, 8))


def test_oversize_refused_before_decoding():
    with pytest.raises(UploadError, match=r"The image is 12 MB; the limit is 2 MB\."):
        image_to_input(b"\0" * 12_000_000, (1, 8, 8))
    assert MAX_UPLOAD_BYTES == 2_000_000
    small = _encode(_digit_one(), "PNG")
    with pytest.raises(UploadError, match="the limit is 100 bytes"):
        image_to_input(small, (1, 8, 8), max_bytes=100)


def test_non_image_dataset_shape_is_refused():
    with pytest.raises(UploadError, match="not a picture"):
        image_to_input(_encode(_digit_one(), "PNG"), (2,))


SEEDS = [_encode(_digit_one(size=(12, 10), mode=m), f) for f, m in
         [("PNG", "L"), ("PNG", "RGBA"), ("GIF", "P"), ("BMP", "RGB"), ("JPEG", "RGB"), ("WEBP", "RGB")]]


def _check_total(data: bytes) -> None:
    try:
        x = image_to_input(data, (1, 8, 8))
    except UploadError as err:
        assert str(err).endswith(".")
        return
    assert x.shape == (1, 1, 8, 8) and torch.isfinite(x).all()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_random_bytes_never_raise_anything_else(data):
    _check_total(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                        max_size=6), st.integers(0, 10**6))
def test_mutated_images_never_raise_anything_else(seed, flips, cut):
    data = bytearray(seed)
    for pos, val in flips:                      # corrupt headers and payload alike
        data[pos % len(data)] = val
    _check_total(bytes(data[: max(1, cut % (len(data) + 1))]))
