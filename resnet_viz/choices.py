"""The spec's name-keyed tables: allowed values of each text knob, ranges of each number,
and the input shape and class count of each dataset (known without loading it: the
architecture page draws a net before any data is read). The spec stores only strings and
numbers; these tables give them meaning. Imports nothing.
"""
from __future__ import annotations

# Name-keyed tables: the spec stores only strings and numbers.
MODELS = ("mlp", "cnn")
BLOCKS = ("basic", "bottleneck")
SHORTCUTS = ("none", "identity", "projection", "gated")
RESIDUAL_SHORTCUTS = ("identity", "projection", "gated")
NORMS = ("batch", "none")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "gelu")
INITS = ("he", "xavier", "zero_last_bn")
SYNTHETIC_2D = ("spirals", "circles", "xor", "moons", "gaussians")
IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "folder")  # folder: your own images
DATASETS = SYNTHETIC_2D + ("grid1d",) + IMAGE_DATASETS
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "step", "cosine")
DEVICES = ("auto", "cpu", "cuda")
AUGMENTS = ("none", "he")      # he: He et al. §4.2, 4-pixel pad, random crop, horizontal flip

# (min, max) for numeric knobs. Maxima are sanity bounds, not classroom limits
# (the teacher config narrows those).
RANGES: dict[str, tuple[float, float]] = {
    "depth": (1, 1000),
    "width": (2, 1024),
    "mlp_block_layers": (1, 2),
    "residual_scale": (0.0, 4.0),
    "gate_bias": (-10.0, 10.0),
    "n_samples": (16, 200_000),
    "noise": (0.0, 2.0),
    "val_fraction": (0.05, 0.5),
    "lr": (1e-6, 10.0),
    "momentum": (0.0, 0.999),
    "weight_decay": (0.0, 0.1),
    "warmup_steps": (0, 100_000),
    "batch_size": (1, 4096),
    "steps": (1, 1_000_000),
    "eval_every": (1, 100_000),
    "log_every": (1, 100_000),
    "seed": (0, 2**31 - 1),
    "image_size": (8, 64),
    "folder_classes": (2, 100),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "model": MODELS, "block": BLOCKS, "shortcut": SHORTCUTS, "norm": NORMS,
    "activation": ACTIVATIONS, "init": INITS, "dataset": DATASETS,
    "optimizer": OPTIMIZERS, "lr_schedule": SCHEDULES, "device": DEVICES, "augment": AUGMENTS,
}


# Input shape and number of classes of each dataset, known without loading it (the
# architecture page draws a net before any data is read).
DATASET_SHAPES: dict[str, tuple[tuple[int, ...], int]] = {
    **{name: ((2,), 2) for name in SYNTHETIC_2D},
    "grid1d": ((1,), 2),
    "digits": ((1, 8, 8), 10),
    "mnist": ((1, 28, 28), 10),
    "fashion_mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "folder": ((3, 32, 32), 2),          # the defaults; ``spec.data_shape()`` reads the spec's own
}
