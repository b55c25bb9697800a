"""Loss-landscape slices with filter-normalised random directions.

Li, Xu, Taylor, Studer, Goldstein 2018, "Visualizing the Loss Landscape of Neural Nets"
(NeurIPS, arXiv:1712.09913). We plot L(θ + αδ) and L(θ + αδ + βη) around a trained θ,
where δ, η are Gaussian directions rescaled filter by filter to the norm of θ's matching
filter (§4), so nets whose weights differ in scale are compared on the same footing;
bias and BN directions are zero, as in the paper. Without shortcuts a deep net's surface
is chaotic and non-convex; with them it is smooth and nearly convex (their Fig. 5).

Example::

    surf = loss_surface_2d(net, x_train, y_train, steps=21)   # x: (N, ...), y: (N,)
    surf["loss"][10][10] == surf["center_loss"]               # the centre is θ itself
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

Progress = Callable[[int, int], None] | None
ShouldStop = Callable[[], bool] | None

_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)


def _normalised_params(model: nn.Module) -> set[int]:
    """ids of normalisation-layer parameters (BN γ, β): their directions are zeroed."""
    return {id(p) for m in model.modules() if isinstance(m, _NORM_TYPES)
            for p in m.parameters(recurse=False)}


def random_direction(model: nn.Module, seed: int = 0) -> list[torch.Tensor]:
    """A filter-normalised Gaussian direction, one tensor per ``model.parameters()``.

    Li et al. 2018 §4: d ~ N(0, I), then each filter d_{i,j} ← d_{i,j}/‖d_{i,j}‖·‖θ_{i,j}‖,
    where a filter is a row of a Linear weight or an output channel of a Conv weight (dim 0).
    One-dimensional parameters (biases) and normalisation parameters get a zero direction,
    as in the paper. Drawn from a ``torch.Generator`` so the global RNG is left untouched.
    """
    gen = torch.Generator().manual_seed(int(seed))
    skip = _normalised_params(model)
    out = []
    for p in model.parameters():
        # Draw for every parameter (zeroed or not) so a direction depends only on the seed
        # and the architecture, not on which entries end up zeroed.
        d = torch.randn(p.shape, generator=gen, dtype=torch.float32).to(p.dtype)
        if p.dim() <= 1 or id(p) in skip:
            out.append(torch.zeros_like(p))
            continue
        theta = p.detach().cpu()
        dn = d.flatten(1).norm(dim=1)                      # (filters,)
        tn = theta.flatten(1).norm(dim=1)                  # (filters,)
        scale = (tn / dn.clamp_min(1e-12)).view(-1, *([1] * (p.dim() - 1)))
        out.append((d * scale).to(p.device))
    return out


@torch.no_grad()
def _loss_acc(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
              batch_size: int = 2048) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over (x, y), evaluated in chunks to bound memory."""
    total, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size])
        yb = y[i:i + batch_size]
        total += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += int((logits.argmax(1) == yb).sum())
    n = max(len(x), 1)
    return total / n, correct / n


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _grid_eval(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               dirs: list[list[torch.Tensor]], coords: list[tuple[float, ...]],
               progress: Progress, should_stop: ShouldStop) -> tuple[list[float], list[float]]:
    """L(θ + Σ_k c_k d_k) for each coordinate tuple c; θ and the mode restored exactly."""
    params = list(model.parameters())
    originals = [p.detach().clone() for p in params]
    was_training = model.training
    dev = _device_of(model)
    x, y = x.to(dev), y.to(dev)
    losses: list[float] = []
    accs: list[float] = []
    try:
        # Eval mode on the centre's statistics (precise BN in ``Trainer.weights``): the loss is
        # then a function of θ alone, as Li et al. 2018 plot it.
        model.eval()
        with torch.no_grad():
            for done, c in enumerate(coords, start=1):
                if should_stop is not None and should_stop():
                    break
                for i, (p, p0) in enumerate(zip(params, originals)):
                    p.copy_(p0)
                    for ck, d in zip(c, dirs):
                        if ck:
                            p.add_(d[i], alpha=ck)
                loss, acc = _loss_acc(model, x, y)
                losses.append(loss)
                accs.append(acc)
                if progress is not None:
                    progress(done, len(coords))
    finally:
        with torch.no_grad():
            for p, p0 in zip(params, originals):
                p.copy_(p0)   # bit-exact: the clone, not θ + αδ − αδ
        model.train(was_training)
    return losses, accs


def _axis(steps: int, span: float) -> list[float]:
    if steps < 2:
        raise ValueError(f"a loss surface needs at least 2 steps per axis (got {steps})")
    if not span > 0:
        raise ValueError(f"span must be positive (got {span})")
    axis = np.linspace(-span, span, steps)
    if steps % 2:
        axis[steps // 2] = 0.0   # θ itself lies exactly on the grid when steps is odd
    return [float(v) for v in axis]


def loss_surface_1d(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 41,
                    span: float = 1.0, seed: int = 0, progress: Progress = None,
                    should_stop: ShouldStop = None) -> dict:
    """Training loss along one filter-normalised direction, L(θ + αδ), α ∈ [−span, span].

    Li et al. 2018 §4 (1-D plots, their Fig. 3). Returns ``{"alpha", "loss", "acc",
    "center_loss", "center_acc", "seed", "complete"}``; ``complete`` is False when
    ``should_stop`` cancelled the run (then ``loss`` holds only the points evaluated).
    """
    alpha = _axis(steps, span)
    dirs = [random_direction(model, seed)]
    center_loss, center_acc = _center(model, x, y)
    loss, acc = _grid_eval(model, x, y, dirs, [(a,) for a in alpha], progress, should_stop)
    return {"alpha": alpha, "loss": loss, "acc": acc, "center_loss": center_loss,
            "center_acc": center_acc, "seed": int(seed), "complete": len(loss) == len(alpha)}


def loss_surface_2d(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 21,
                    span: float = 1.0, seed: int = 0, progress: Progress = None,
                    should_stop: ShouldStop = None) -> dict:
    """Training loss on the plane L(θ + αδ + βη), two filter-normalised directions.

    Li et al. 2018 §4-5 (their Fig. 5: ResNet-56 with / without skip connections).
    δ and η come from seeds ``seed`` and ``seed + 1``. ``loss[j][i]`` is at
    (alpha[i], beta[j]) — rows are β, as plotly's Surface/Contour ``z`` expects.
    A cancelled run (``complete`` False) fills the points not evaluated with ``None``.
    """
    alpha = _axis(steps, span)
    dirs = [random_direction(model, seed), random_direction(model, seed + 1)]
    coords = [(a, b) for b in alpha for a in alpha]
    center_loss, center_acc = _center(model, x, y)
    flat, flat_acc = _grid_eval(model, x, y, dirs, coords, progress, should_stop)
    complete = len(flat) == len(coords)
    pad = [None] * (len(coords) - len(flat))
    flat, flat_acc = flat + pad, flat_acc + pad
    grid = [flat[j * steps:(j + 1) * steps] for j in range(steps)]
    grid_acc = [flat_acc[j * steps:(j + 1) * steps] for j in range(steps)]
    return {"alpha": alpha, "beta": list(alpha), "loss": grid, "acc": grid_acc,
            "center_loss": center_loss, "center_acc": center_acc, "seed": int(seed),
            "complete": complete}


def _center(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """The loss at θ itself, evaluated the same way as the grid (eval mode, restored)."""
    losses, accs = _grid_eval(model, x, y, [], [()], None, None)
    return losses[0], accs[0]


def estimate_seconds(model: nn.Module, x: torch.Tensor, steps_2d: int) -> float:
    """Seconds a ``steps_2d`` × ``steps_2d`` surface on ``x`` will take, from timing one point.

    One untimed warm-up evaluation first (allocator, lazy kernels), then the median of
    three timed ones, times the number of grid points.
    """
    y = torch.zeros(len(x), dtype=torch.long)
    times = []
    for k in range(4):
        t0 = time.perf_counter()
        _grid_eval(model, x, y, [], [()], None, None)
        if k:
            times.append(time.perf_counter() - t0)
    return float(np.median(times)) * steps_2d * steps_2d


def curvature_ratio_map(surface_2d: dict) -> np.ndarray:
    """λ_min/λ_max of the projected surface's discrete 2×2 Hessian at each interior point.

    Central differences on the grid: f_αα, f_ββ, f_αβ. Negative values mark saddle- or
    cap-shaped (non-convex) points. This is the 2-D analogue of Li et al.'s |λ_min/λ_max|
    map (§6, their Fig. 7), which they compute from the full Hessian; shape (steps−2, steps−2).
    """
    z = np.asarray(surface_2d["loss"], dtype=float)   # (β, α)
    if z.ndim != 2 or min(z.shape) < 3 or not np.isfinite(z).all():
        raise ValueError("need a complete 2-D surface of at least 3 x 3 finite points")
    ha = surface_2d["alpha"][1] - surface_2d["alpha"][0]
    hb = surface_2d["beta"][1] - surface_2d["beta"][0]
    c = z[1:-1, 1:-1]
    faa = (z[1:-1, 2:] - 2 * c + z[1:-1, :-2]) / ha ** 2
    fbb = (z[2:, 1:-1] - 2 * c + z[:-2, 1:-1]) / hb ** 2
    fab = (z[2:, 2:] - z[2:, :-2] - z[:-2, 2:] + z[:-2, :-2]) / (4 * ha * hb)
    mean, rad = (faa + fbb) / 2, np.sqrt(((faa - fbb) / 2) ** 2 + fab ** 2)
    lo, hi = mean - rad, mean + rad
    big = np.maximum(np.abs(lo), np.abs(hi))
    return np.where(big > 0, lo / np.where(big > 0, big, 1.0), 0.0)


def convexity_ratio(surface_2d: dict, tol: float = 0.01) -> float:
    """Fraction of interior grid points where the surface is *not* locally convex.

    A point counts as non-convex when its discrete 2×2 Hessian has a negative eigenvalue
    larger than ``tol`` times the largest |eigenvalue| there (``curvature_ratio_map`` <
    −tol), so float round-off on a flat plateau does not count. 0 = convex everywhere on
    the plane, 1 = nowhere. Li et al. 2018 §6: negative curvature in a projected surface
    implies the full Hessian has a negative eigenvalue (not conversely), so this is a
    conservative, honest summary of their "chaotic vs nearly convex" contrast.
    """
    return float((curvature_ratio_map(surface_2d) < -tol).mean())


def slice_sharpness(surface_1d: dict, radius: float = 0.25) -> float:
    """Mean rise of the 1-D slice within ``|α| ≤ radius`` above the centre loss.

    How steeply the loss climbs when θ moves by ``radius`` of its own (filter-wise) norm:
    Li et al. 2018 §5 relate such sharpness to trainability and generalisation.
    """
    a = np.asarray(surface_1d["alpha"], dtype=float)
    loss = np.asarray(surface_1d["loss"], dtype=float)
    near = (np.abs(a) <= radius + 1e-12) & (a != 0)
    if not near.any():
        raise ValueError(f"no grid points within radius {radius} of the centre")
    return float(np.mean(loss[near]) - surface_1d["center_loss"])
