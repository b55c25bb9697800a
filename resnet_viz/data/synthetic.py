"""The synthetic 2-D sets (TensorFlow Playground's, balanced, points at scale ~1 before
noise). Each generator is a pure function of its ``numpy`` random stream."""
from __future__ import annotations

from typing import Callable

import numpy as np

def halves(n: int) -> tuple[int, int]:
    return n // 2, n - n // 2


def spirals(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for label, count in enumerate(halves(n)):
        r = rng.uniform(0.05, 1.0, count)  # radius grows with the angle: an Archimedes spiral
        t = 1.75 * 2 * np.pi * r + label * np.pi
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        ys.append(np.full(count, label))
    return np.concatenate(xs), np.concatenate(ys)


def circles(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    n_in, n_out = halves(n)
    r = np.concatenate([rng.uniform(0.0, 0.5, n_in), rng.uniform(0.7, 1.0, n_out)])
    t = rng.uniform(0, 2 * np.pi, n)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1), np.repeat([0, 1], [n_in, n_out])


def xor(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.repeat([0, 1], halves(n))
    mag = rng.uniform(0.05, 1.0, (n, 2))  # a small gap keeps the quadrants apart
    sx = rng.choice([-1.0, 1.0], n)
    sy = np.where(y == 1, sx, -sx)  # class 1: same sign (x*y > 0)
    return mag * np.stack([sx, sy], 1), y


def moons(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    n0, n1 = halves(n)
    t = rng.uniform(0, np.pi, n)
    outer = np.stack([np.cos(t[:n0]), np.sin(t[:n0])], 1)
    inner = np.stack([1 - np.cos(t[n0:]), 0.5 - np.sin(t[n0:])], 1)
    return np.concatenate([outer, inner]), np.repeat([0, 1], [n0, n1])


def gaussians(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.repeat([0, 1], halves(n))
    centres = np.where(y[:, None] == 1, 0.7, -0.7)
    return centres + rng.normal(0.0, 0.35, (n, 2)), y


GENERATORS: dict[str, Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]] = {
    "spirals": spirals, "circles": circles, "xor": xor, "moons": moons, "gaussians": gaussians,
}
