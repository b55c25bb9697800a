"""Datasets for ResNet Lab: toy 2-D sets, the 1-D shattering input, and image sets.

Everything is a pure function of the spec: randomness comes only from
``numpy.random.default_rng`` streams derived from ``spec.seed`` (never global state),
so a shared link reproduces the exact same points and split. The 2-D generators are in
``synthetic``; the readers of local files (untrusted input) in ``files``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from resnet_viz.data.files import LOCAL, DataError, folder
from resnet_viz.data.normalisation import (CIFAR100_MEAN, CIFAR100_STD, CIFAR_MEAN, CIFAR_STD, DIGITS_MEAN,  # noqa: F401
                                           DIGITS_STD, FASHION_MEAN, FASHION_STD, MNIST_MEAN, MNIST_STD)
from resnet_viz.data.synthetic import GENERATORS
from resnet_viz.spec import DATASETS, SYNTHETIC_2D, ExperimentSpec


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
    "cifar100": "32x32 colour photos in 100 classes (local binary CIFAR-100 files, fine labels).",
    "folder": "Your own images: one sub-folder per class, uploaded or read from a folder.",
}


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
    if name not in LOCAL:
        return (True, "") if name in _DESCRIPTIONS else (False, f"unknown dataset {name!r}")
    try:
        LOCAL[name][0](folder(name, data_dir))
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
        x, y = GENERATORS[name](points, spec.n_samples)
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
    if name == "folder":
        from resnet_viz.data import image_folder
        images, labels, _ = image_folder.load(spec.folder_id, spec.image_size, spec.folder_classes, data_dir)
        keep = _cap(points, len(labels), spec.n_samples)
        x = images[keep].astype(np.float32) / 255.0
        # the set's own per-channel statistics: no published constants exist for your images
        mean, std = x.mean((0, 2, 3), keepdims=True), x.std((0, 2, 3), keepdims=True)
        return _finish(name, (x - mean) / np.maximum(std, 1e-3), labels[keep], spec, split)
    locate, read = LOCAL[name]
    images, labels = read(locate(folder(name, data_dir)))
    keep = _cap(points, len(labels), spec.n_samples)  # subsample while still uint8
    return _finish(name, _normalise(name, images[keep]), labels[keep].astype(np.int64),
                   spec, split)


# --- assembling -------------------------------------------------------------------

def _cap(rng: np.random.Generator, n: int, cap: int) -> np.ndarray:
    """Indices of a seeded subsample of at most ``cap`` of ``n`` examples, in file order."""
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, size=cap, replace=False))


def _finish(name: str, x: np.ndarray, y: np.ndarray, spec: ExperimentSpec,
            rng: np.random.Generator, standardise: bool = False) -> Dataset:
    """Seeded train/val permutation split, then tensors shaped as ``spec.data_shape()`` says."""
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
    shape, n_classes = spec.data_shape()
    assert x.shape[1:] == shape, (name, x.shape)  # a bug here, never user input
    xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.asarray(y, np.int64))
    return Dataset(xt[tr], yt[tr], xt[va], yt[va], n_classes, shape, name, _DESCRIPTIONS[name])


def _normalise(name: str, images: np.ndarray) -> np.ndarray:
    """uint8 images -> standardised float32 with fixed, published per-channel constants."""
    x = images.astype(np.float32) / 255.0
    if name in ("cifar10", "cifar100"):
        x = x.reshape(-1, 3, 32, 32)
        m, s = (CIFAR_MEAN, CIFAR_STD) if name == "cifar10" else (CIFAR100_MEAN, CIFAR100_STD)
        return (x - np.asarray(m, np.float32).reshape(1, 3, 1, 1)) / np.asarray(s, np.float32).reshape(1, 3, 1, 1)
    mean, std = (MNIST_MEAN, MNIST_STD) if name == "mnist" else (FASHION_MEAN, FASHION_STD)
    return ((x - mean) / std).reshape(-1, 1, 28, 28)


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    # Imported lazily: sklearn costs ~1 s to import and only this set needs it.
    from sklearn.datasets import load_digits
    images, labels = load_digits(return_X_y=True)
    images.flags.writeable = labels.flags.writeable = False  # shared by the cache
    return images, labels.astype(np.int64)


