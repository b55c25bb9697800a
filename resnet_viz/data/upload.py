"""A student's own picture turned into one input for the net, safely.

Uploaded bytes are untrusted: the size is refused before decoding, only five formats are
parsed, the declared pixel count is checked from the header before any pixel is decoded
(a 30 kB PNG can declare 50 000 × 50 000 pixels: a "decompression bomb"), and every failure
becomes an ``UploadError`` whose message is a sentence for the student.

Preprocessing mirrors the training data:
- grey targets (digits 8×8, MNIST-style 28×28): light backgrounds are inverted so strokes
  are bright on dark, as in sklearn's digits (Alpaydin & Kaynak 1998, values 0..16) and
  MNIST (LeCun et al. 1998); the ink is cropped, centred with a margin and area-averaged
  down, then standardised.
- colour targets (CIFAR-style 3×32×32, Krizhevsky 2009): centre-cropped to the target's
  aspect, resized, /255, standardised per channel.

Digits are standardised as ``(v/16 − DIGITS_MEAN) / DIGITS_STD`` with ``v`` in 0..16; the
two constants are the mean and (population) std of ``load_digits().data / 16``. ``normalisation``
holds them for the loader and this module (the ``NORMALISATION`` table) so an upload looks like the data.
"""
from __future__ import annotations

import io
import math
import warnings
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from resnet_viz.data.normalisation import (CIFAR100_MEAN, CIFAR100_STD, CIFAR_MEAN, CIFAR_STD, DIGITS_MEAN, DIGITS_STD, FASHION_MEAN, FASHION_STD,
                   MNIST_MEAN, MNIST_STD)

MAX_UPLOAD_BYTES = 2_000_000
MAX_PIXELS = 16_000_000          # decoded as RGBA that is 64 MB: plenty for a photo of a digit
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
WORK_SIZE = 256                  # images are shrunk to this first; targets are at most 32 px
# One source of truth for the standardisation: the dataset loader's constants, so an
# uploaded digit lands in the same range as the training images.
# (mean per channel, std per channel) after /16 (digits) or /255 (the rest).
NORMALISATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "digits": ((DIGITS_MEAN,), (DIGITS_STD,)),
    "mnist": ((MNIST_MEAN,), (MNIST_STD,)),
    "fashion_mnist": ((FASHION_MEAN,), (FASHION_STD,)),
    "cifar10": (CIFAR_MEAN, CIFAR_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
}
_READABLE = "PNG, JPEG, GIF, BMP, WebP"


class UploadError(ValueError):
    """An upload that cannot become an input; the message is meant for the student."""


def image_to_input(data: bytes, input_shape: tuple[int, ...], max_bytes: int = MAX_UPLOAD_BYTES,
                   *, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                   max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """Decode an uploaded image into a float32 batch of one, shape ``(1, *input_shape)``.

    ``mean``/``std`` (one value, or one per channel) standardise the 0..1 pixels; by default
    an 8×8 grey target uses the digits constants and anything else is left at 0..1.

    Example: ``image_to_input(png_bytes, (1, 8, 8))`` -> tensor (1, 1, 8, 8), strokes near
    ``(1 − DIGITS_MEAN) / DIGITS_STD ≈ 1.85``, background ``≈ −0.81``;
    ``image_to_input(jpg, (3, 32, 32), mean=NORMALISATION["cifar10"][0], std=...[1])`` -> (1, 3, 32, 32).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected the file's bytes, got {type(data).__name__}")
    channels, height, width = _image_shape(input_shape)
    _check_bytes(len(data), max_bytes)
    img = decode_image(bytes(data), max_pixels)
    if channels == 1:
        pixels = _grey_glyph(img.convert("L"), height, width)[None]    # (1, H, W)
        if mean is None and std is None and (height, width) == (8, 8):
            mean, std = NORMALISATION["digits"]
    else:
        pixels = fit_colour(img.convert("RGB"), height, width)       # (3, H, W)
    return torch.from_numpy(_standardise(pixels, mean, std)).float()[None]


def _image_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or not all(1 <= s <= 1024 for s in shape[1:]):
        raise UploadError(f"This experiment's inputs have shape {shape}, not a picture; pick "
                          "digits, MNIST, Fashion-MNIST or CIFAR-10 to try your own image.")
    return shape  # type: ignore[return-value]


def _fmt_bytes(n: float) -> str:
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{int(n)} bytes"


def _check_bytes(n: int, max_bytes: int) -> None:
    if n == 0:
        raise UploadError(f"The file is empty; choose an image ({_READABLE}).")
    if n > max_bytes:
        raise UploadError(f"The image is {_fmt_bytes(n)}; the limit is {_fmt_bytes(max_bytes)}.")


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Header check, then decode; the result is 'L', 'RGB' or 'RGBA' of at most WORK_SIZE px."""
    try:
        with warnings.catch_warnings():  # our own, lower pixel limit is checked just below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = img.size
        if width * height > max_pixels:
            raise UploadError(f"The image claims to be {width}×{height} pixels; the limit is "
                              f"{max_pixels / 1e6:g} megapixels.")
        if width < 1 or height < 1:
            raise UploadError("The image has no pixels.")
        img.load()
        return _normalise_mode(img)
    except UploadError:
        raise
    except Image.DecompressionBombError:
        raise UploadError(f"The image claims far too many pixels; the limit is "
                          f"{max_pixels / 1e6:g} megapixels.") from None
    except UnidentifiedImageError:
        raise UploadError(f"That file is not an image PIL can read ({_READABLE}).") from None
    except MemoryError:
        raise UploadError("The image is too large to decode.") from None
    except Exception as err:  # untrusted bytes: parsers raise OSError, SyntaxError, struct.error...
        raise UploadError("The image file is damaged or cut short and could not be decoded "
                          f"({type(err).__name__}).") from None


def _normalise_mode(img: Image.Image) -> Image.Image:
    """Any PIL mode to 'L', 'RGB' or 'RGBA', upright, shrunk to WORK_SIZE."""
    img = ImageOps.exif_transpose(img)  # phone photos store rotation in EXIF
    if img.mode.startswith("I") or img.mode == "F":   # 16/32-bit grey: stretch to 8 bits
        img = _stretch_to_l(img)
    elif img.mode in ("P", "PA"):
        img = img.convert("RGBA")                      # keeps palette transparency
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode not in ("L", "RGB", "RGBA", "LA"):
        img = img.convert("RGBA" if "A" in img.mode else "RGB")  # CMYK, YCbCr, HSV...
    img.thumbnail((WORK_SIZE, WORK_SIZE), Image.Resampling.BOX)
    return _flatten_alpha(img) if img.mode in ("RGBA", "LA") else img


def _stretch_to_l(img: Image.Image) -> Image.Image:
    arr = np.nan_to_num(np.asarray(img, dtype=np.float32), posinf=0.0, neginf=0.0)
    lo, hi = float(arr.min()), float(arr.max())
    scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
    return Image.fromarray(scaled.round().astype(np.uint8))


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite over black or white, whichever contrasts with the opaque content.

    Drawing apps export dark or light strokes on a transparent background; a fixed
    background would make one of the two invisible.
    """
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)   # (H, W, 4)
    alpha = rgba[..., 3:] / 255.0
    lum = rgba[..., :3].mean(-1, keepdims=True)
    ink = float((lum * alpha).sum() / max(float(alpha.sum()), 1e-6))
    background = 0.0 if ink > 127.5 else 255.0
    rgb = rgba[..., :3] * alpha + background * (1.0 - alpha)
    return Image.fromarray(rgb.round().clip(0, 255).astype(np.uint8))


def _grey_glyph(img: Image.Image, height: int, width: int) -> np.ndarray:
    """Bright strokes on black, cropped to the ink, centred, area-averaged to (H, W), 0..1."""
    arr = np.asarray(img, dtype=np.float32) / 255.0                # (h, w)
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    if float(np.median(border)) > 0.5:                             # dark ink on light paper
        arr, border = 1.0 - arr, 1.0 - border
    background, peak = float(np.median(border)), float(arr.max())
    if peak - background < 0.05:                                   # blank: nothing to centre
        return np.zeros((height, width), np.float32)
    arr = np.clip((arr - background) / (peak - background), 0.0, 1.0)
    canvas = _centre_ink(arr, height, width, margin=0.0 if max(height, width) <= 8 else 4 / 28)
    small = Image.fromarray(canvas).resize((width, height), Image.Resampling.BOX)
    return np.clip(np.asarray(small, dtype=np.float32), 0.0, 1.0)


def _centre_ink(arr: np.ndarray, height: int, width: int, margin: float) -> np.ndarray:
    """The ink's bounding box pasted in the middle of a black canvas of the target aspect.

    MNIST digits fill a 20×20 box centred in 28×28 (margin 4/28); sklearn digits fill the
    whole 8×8 (margin 0).
    """
    rows, cols = np.nonzero(arr > 0.2)
    ink = arr[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    inner = 1.0 - 2.0 * margin
    scale = max(ink.shape[0] / (height * inner), ink.shape[1] / (width * inner))
    big_h, big_w = max(ink.shape[0], math.ceil(height * scale)), max(ink.shape[1], math.ceil(width * scale))
    canvas = np.zeros((big_h, big_w), np.float32)
    top, left = (big_h - ink.shape[0]) // 2, (big_w - ink.shape[1]) // 2
    canvas[top:top + ink.shape[0], left:left + ink.shape[1]] = ink
    return canvas


def fit_colour(img: Image.Image, height: int, width: int) -> np.ndarray:
    """Centre crop to the target aspect, resize, (3, H, W) in 0..1."""
    fitted = ImageOps.fit(img, (width, height), Image.Resampling.BICUBIC)
    return np.asarray(fitted, dtype=np.float32).transpose(2, 0, 1) / 255.0


def _standardise(pixels: np.ndarray, mean: Sequence[float] | None,
                 std: Sequence[float] | None) -> np.ndarray:
    channels = pixels.shape[0]
    m = np.asarray(mean if mean is not None else (0.0,), np.float32).reshape(-1)
    s = np.asarray(std if std is not None else (1.0,), np.float32).reshape(-1)
    if m.size not in (1, channels) or s.size not in (1, channels) or not (s > 0).all():
        raise ValueError(f"mean/std need 1 or {channels} values and std > 0 (got {mean}, {std})")
    return (pixels - m[:, None, None]) / s[:, None, None]
