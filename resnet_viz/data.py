"""Datasets for ResNet Lab: toy 2-D sets, the 1-D shattering input, and image sets.

Everything is a pure function of the spec: randomness comes only from
``numpy.random.default_rng`` streams derived from ``spec.seed`` (never global state),
so a shared link reproduces the exact same points and split. Local files (MNIST,
Fashion-MNIST, CIFAR-10) are untrusted input: every header, size and label is checked
and any problem becomes a ``DataError`` with a sentence a student can act on.
"""
from __future__ import annotations

import functools
import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .spec import DATASET_SHAPES, DATASETS, SYNTHETIC_2D, ExperimentSpec

MAX_TOTAL_BYTES = 400 * 2**20  # guard against absurd files: more than all of CIFAR-10
DIGITS_MEAN, DIGITS_STD = 0.3053, 0.3760  # of load_digits()/16, all 1797 images
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
CIFAR_BIN_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
IDX_SOURCES = {  # title, where to get the files
    "mnist": ("MNIST", "https://yann.lecun.com/exdb/mnist/ or a mirror"),
    "fashion_mnist": ("Fashion-MNIST", "https://github.com/zalandoresearch/fashion-mnist"),
}

_DESCRIPTIONS = {
    "spirals": "Two interleaved spirals: hard for a linear model, needs depth.",
    "circles": "A disc inside a ring: the classes are separated by radius.",
    "xor": "Four quadrants, opposite corners share a class (the XOR problem).",
    "moons": "Two interleaving half-moons.",
    "gaussians": "Two Gaussian blobs: nearly linearly separable, a sanity check.",
    "grid1d": "1-D input on [-2, 2], label sin(3x) > 0: the shattered-gradients study "
              "(Balduzzi et al. 2017).",
    "digits": "8x8 handwritten digits bundled with scikit-learn (1797 images, 10 classes).",
    "mnist": "28x28 handwritten digits (local IDX files, 10 classes).",
    "fashion_mnist": "28x28 clothing images (local IDX files, 10 classes).",
    "cifar10": "32x32 colour photos in 10 classes (local binary CIFAR-10 files).",
}


class DataError(ValueError):
    """A dataset that cannot be loaded; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Dataset:
    """A train/val split on CPU: x float32 ``(N, *input_shape)``, y int64 ``(N,)``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_classes: int
    input_shape: tuple[int, ...]
    name: str
    description: str = ""

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.x_val.shape[0])


def describe(name: str) -> str:
    """One-line description of a dataset for the UI."""
    if name not in _DESCRIPTIONS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return _DESCRIPTIONS[name]


def available(name: str, data_dir: str | Path | None = None) -> tuple[bool, str]:
    """Whether ``name`` can be loaded, without reading it; the message says why not."""
    if name not in _LOCAL:
        return (True, "") if name in _DESCRIPTIONS else (False, f"unknown dataset {name!r}")
    try:
        _LOCAL[name][0](_folder(name, data_dir))
    except DataError as err:
        return False, str(err)
    return True, ""


def grid_1d(n: int = 256, lo: float = -2.0, hi: float = 2.0) -> torch.Tensor:
    """``n`` evenly spaced points on [lo, hi], shape (n, 1): the input of Balduzzi et al.'s
    shattered-gradients plots (their Fig. 1 uses 1-D input on [-2, 2])."""
    return torch.linspace(lo, hi, n, dtype=torch.float32).unsqueeze(1)


def load_dataset(spec: ExperimentSpec, data_dir: str | Path | None = None) -> Dataset:
    """Load ``spec.dataset`` and split it by ``spec.val_fraction``; deterministic in ``spec.seed``.

    Three independent random streams (points, noise, split) so that moving the noise
    slider changes only the noise, never which points exist or which land in val.
    """
    name = spec.dataset
    describe(name)  # unknown name -> DataError
    points, noise, split = (np.random.default_rng(s)
                            for s in np.random.SeedSequence(spec.seed).spawn(3))
    if name in SYNTHETIC_2D:
        x, y = _GENERATORS[name](points, spec.n_samples)
        x = x + noise.normal(0.0, 1.0, x.shape) * spec.noise  # data scale is ~1
        return _finish(name, x, y, spec, split, standardise=True)
    if name == "grid1d":
        # Not standardised and noise-free: shatter.py feeds grid_1d() on the same [-2, 2].
        x = points.uniform(-2.0, 2.0, (spec.n_samples, 1))
        return _finish(name, x, (np.sin(3 * x[:, 0]) > 0).astype(np.int64), spec, split)
    if name == "digits":
        images, labels = _digits()
        keep = _cap(points, len(labels), spec.n_samples)
        x = ((images[keep] / 16.0 - DIGITS_MEAN) / DIGITS_STD).reshape(-1, 1, 8, 8)
        return _finish(name, x, labels[keep], spec, split)
    locate, read = _LOCAL[name]
    images, labels = read(locate(_folder(name, data_dir)))
    keep = _cap(points, len(labels), spec.n_samples)  # subsample while still uint8
    return _finish(name, _normalise(name, images[keep]), labels[keep].astype(np.int64),
                   spec, split)


# --- assembling -------------------------------------------------------------------

def _cap(rng: np.random.Generator, n: int, cap: int) -> np.ndarray:
    """Indices of a seeded subsample of at most ``cap`` of ``n`` examples, in file order."""
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, size=cap, replace=False))


def _finish(name: str, x: np.ndarray, y: np.ndarray, spec: ExperimentSpec,
            rng: np.random.Generator, standardise: bool = False) -> Dataset:
    """Seeded train/val permutation split, then tensors shaped as ``DATASET_SHAPES`` says."""
    n = len(y)
    if n < 2:
        raise DataError(f"{name} has only {n} example(s); at least 2 are needed to "
                        "make a training and a validation set")
    n_val = min(n - 1, max(1, round(n * spec.val_fraction)))
    perm = rng.permutation(n)
    tr, va = perm[n_val:], perm[:n_val]
    x = np.asarray(x, dtype=np.float32)
    if standardise:  # train statistics only, so val stays unseen
        mean, std = x[tr].mean(0), x[tr].std(0)
        x = (x - mean) / np.where(std > 1e-8, std, 1.0)
    shape, n_classes = DATASET_SHAPES[name]
    assert x.shape[1:] == shape, (name, x.shape)  # a bug here, never user input
    xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.asarray(y, np.int64))
    return Dataset(xt[tr], yt[tr], xt[va], yt[va], n_classes, shape, name, _DESCRIPTIONS[name])


def _normalise(name: str, images: np.ndarray) -> np.ndarray:
    """uint8 images -> standardised float32 with fixed, published per-channel constants."""
    x = images.astype(np.float32) / 255.0
    if name == "cifar10":
        x = x.reshape(-1, 3, 32, 32)
        mean = np.asarray(CIFAR_MEAN, np.float32).reshape(1, 3, 1, 1)
        return (x - mean) / np.asarray(CIFAR_STD, np.float32).reshape(1, 3, 1, 1)
    mean, std = (MNIST_MEAN, MNIST_STD) if name == "mnist" else (FASHION_MEAN, FASHION_STD)
    return ((x - mean) / std).reshape(-1, 1, 28, 28)


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    # Imported lazily: sklearn costs ~1 s to import and only this set needs it.
    from sklearn.datasets import load_digits
    images, labels = load_digits(return_X_y=True)
    images.flags.writeable = labels.flags.writeable = False  # shared by the cache
    return images, labels.astype(np.int64)


# --- synthetic 2-D sets (balanced; points at scale ~1 before noise) ----------------

def _halves(n: int) -> tuple[int, int]:
    return n // 2, n - n // 2


def _spirals(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for label, count in enumerate(_halves(n)):
        r = rng.uniform(0.05, 1.0, count)  # radius grows with the angle: an Archimedes spiral
        t = 1.75 * 2 * np.pi * r + label * np.pi
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        ys.append(np.full(count, label))
    return np.concatenate(xs), np.concatenate(ys)


def _circles(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    n_in, n_out = _halves(n)
    r = np.concatenate([rng.uniform(0.0, 0.5, n_in), rng.uniform(0.7, 1.0, n_out)])
    t = rng.uniform(0, 2 * np.pi, n)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1), np.repeat([0, 1], [n_in, n_out])


def _xor(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.repeat([0, 1], _halves(n))
    mag = rng.uniform(0.05, 1.0, (n, 2))  # a small gap keeps the quadrants apart
    sx = rng.choice([-1.0, 1.0], n)
    sy = np.where(y == 1, sx, -sx)  # class 1: same sign (x*y > 0)
    return mag * np.stack([sx, sy], 1), y


def _moons(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    n0, n1 = _halves(n)
    t = rng.uniform(0, np.pi, n)
    outer = np.stack([np.cos(t[:n0]), np.sin(t[:n0])], 1)
    inner = np.stack([1 - np.cos(t[n0:]), 0.5 - np.sin(t[n0:])], 1)
    return np.concatenate([outer, inner]), np.repeat([0, 1], [n0, n1])


def _gaussians(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.repeat([0, 1], _halves(n))
    centres = np.where(y[:, None] == 1, 0.7, -0.7)
    return centres + rng.normal(0.0, 0.35, (n, 2)), y


_GENERATORS: dict[str, Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]] = {
    "spirals": _spirals, "circles": _circles, "xor": _xor, "moons": _moons, "gaussians": _gaussians,
}


# --- local files: untrusted bytes, every header and size checked before numpy -------

_IDX_PAIRS = (("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
_CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte, then R, G, B planes of 32x32


def _folder(name: str, data_dir: str | Path | None) -> Path:
    base = data_dir if data_dir is not None else os.environ.get("RESNET_VIZ_DATA") or "data"
    return Path(base).expanduser().absolute() / name


def _inside(folder: Path, rel: str) -> Path | None:
    """``folder/rel`` if present; refuses links out of the folder and non-regular files."""
    path = folder / rel
    if not (path.exists() or path.is_symlink()):
        return None
    real = Path(os.path.realpath(path))  # unlike Path.resolve, never raises on link loops
    if not real.is_relative_to(os.path.realpath(folder)) or not real.is_file():
        raise DataError(f"{path} is not a regular file inside {folder}; "
                        "put the real file there (links out of the folder are refused)")
    return path


def _read_all(paths: list[Path]) -> list[bytes]:
    """File contents (gunzipped where ``.gz``), at most ``MAX_TOTAL_BYTES`` in total."""
    out, left = [], MAX_TOTAL_BYTES
    for path in paths:
        try:
            with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
                data = f.read(left + 1)  # +1 tells "exactly at the limit" from "over it"
        except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
            raise DataError(f"could not read {path} ({err}); re-download it") from None
        if len(data) > left:
            raise DataError(f"{path} takes the data past {MAX_TOTAL_BYTES // 2**20} MB; "
                            "this is not a standard dataset file, replace it")
        out.append(data)
        left -= len(data)
    return out


def _missing(folder: Path, what: str, where: str, extra: str = "") -> DataError:
    state = ("has no usable files" if folder.is_dir() else
             "is not a folder" if folder.exists() else "does not exist")
    return DataError(f"The folder {folder} {state}{extra}. Put {what} there (get them from "
                     f"{where}), or pick the built-in 'digits' dataset.")


def _locate_idx(folder: Path) -> list[Path]:
    found: list[Path] = []
    if folder.is_dir():
        for names in _IDX_PAIRS:
            pair = [_inside(folder, n) or _inside(folder, n + ".gz") for n in names]
            found += [p for p in pair if p] if all(pair) else []
    if found:
        return found
    title, where = IDX_SOURCES[folder.name]
    raise _missing(folder, f"the {title} files train-images-idx3-ubyte and "
                   "train-labels-idx1-ubyte (.gz is fine)", where)


def _parse_idx(path: Path, data: bytes, magic: int, dims: tuple[int, ...]) -> np.ndarray:
    """Checked view of an IDX file (LeCun's format: big-endian magic, sizes, uint8s)."""
    head = 4 * (2 + len(dims))
    if len(data) < head:
        raise DataError(f"{path} is truncated ({len(data)} bytes, less than its header); "
                        "re-download it")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        kind = "image (idx3)" if magic == 2051 else "label (idx1)"
        raise DataError(f"{path} is not an IDX {kind} file (magic number {got}, expected "
                        f"{magic}); check images and labels are not swapped, or re-download it")
    shape = tuple(int.from_bytes(data[i:i + 4], "big") for i in range(4, head, 4))
    if shape[1:] != dims:
        raise DataError(f"{path} holds items of size {shape[1:]}, expected {dims}")
    size = head + int(np.prod(shape, dtype=object))
    if len(data) != size or shape[0] == 0:
        raise DataError(f"{path} header promises {shape[0]} items ({size} bytes) but the file "
                        f"has {len(data)} bytes: it is truncated or corrupt; re-download it")
    return np.frombuffer(data, np.uint8, offset=head).reshape(shape)


def _check_labels(path: Path, labels: np.ndarray) -> np.ndarray:
    if labels.max() > 9:
        raise DataError(f"{path} contains label {int(labels.max())}, but there are only "
                        "10 classes (0-9): the file is corrupt; re-download it")
    return labels


def _read_idx(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    blobs = _read_all(paths)
    for i in range(0, len(paths), 2):
        img = _parse_idx(paths[i], blobs[i], 2051, (28, 28))
        lab = _check_labels(paths[i + 1], _parse_idx(paths[i + 1], blobs[i + 1], 2049, ()))
        if len(img) != len(lab):
            raise DataError(f"{paths[i]} has {len(img)} images but {paths[i + 1]} has "
                            f"{len(lab)} labels; they must come from the same download")
        images.append(img)
        labels.append(lab)
    return _join(images), _join(labels)


def _locate_cifar(folder: Path) -> list[Path]:
    if folder.is_dir():
        for sub in ("cifar-10-batches-bin/", ""):
            found = [p for i in range(1, 6) if (p := _inside(folder, f"{sub}data_batch_{i}.bin"))]
            if found:
                return found
    pickled = any((folder / p).exists() for p in ("cifar-10-batches-py", "data_batch_1"))
    extra = (": only the Python (pickle) version is there, which ResNet Lab never opens "
             "because unpickling a file can run code; download the binary version"
             if pickled else "")
    raise _missing(folder, "the binary CIFAR-10 files (cifar-10-batches-bin/data_batch_1.bin "
                   "… data_batch_5.bin)", CIFAR_BIN_URL, extra)


def _read_cifar(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    records = []
    for path, data in zip(paths, _read_all(paths)):
        if not data or len(data) % _CIFAR_RECORD:
            raise DataError(f"{path} has {len(data)} bytes, not a whole number of "
                            f"{_CIFAR_RECORD}-byte CIFAR-10 records: it is truncated or not "
                            f"the binary version; re-download {CIFAR_BIN_URL}")
        rec = np.frombuffer(data, np.uint8).reshape(-1, _CIFAR_RECORD)
        _check_labels(path, rec[:, 0])
        records.append(rec)
    rec = _join(records)
    return rec[:, 1:], rec[:, 0]


def _join(parts: list[np.ndarray]) -> np.ndarray:
    # The usual case is one file: skip a copy of all of it (it is still uint8 here).
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


_LOCAL: dict[str, tuple[Callable[[Path], list[Path]], Callable]] = {
    "mnist": (_locate_idx, _read_idx),
    "fashion_mnist": (_locate_idx, _read_idx),
    "cifar10": (_locate_cifar, _read_cifar),
}
