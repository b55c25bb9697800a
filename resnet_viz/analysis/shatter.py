"""Shattered gradients: df/dx of a net with a 1-D input, over a grid.

Balduzzi et al. 2017, "The Shattered Gradients Problem" (arXiv:1702.08591). The probed
scalar function is f(x) = logits[:, 0] of an MLP with one input (``dataset="grid1d"``).
Shallow nets have smooth gradients; deep plain nets have gradients like **white noise**
(Theorem 1: correlation between nearby points decays like 2^-L); ResNets with BN keep them
like **brown noise** (Theorem 3: decay only like 1/(β·√L)).

Every gradient is taken on a *frozen* copy of the net (BN statistics computed on the grid,
then eval mode), so each grid point is an independent input and one batched backward
pass gives df_i/dx_i for all points at once.
"""
from __future__ import annotations

import copy
import math
import warnings
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn as nn

from resnet_viz.analysis.signal import (autocorrelation, brown_noise, correlation_matrix,  # noqa: F401
                                        noise_references, spectrum_slope, white_noise)
from resnet_viz.nets.models import build_model
from resnet_viz.spec import ExperimentSpec

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
BN_MODES = {
    "grid": "BN statistics computed on the grid points, then frozen (eval mode): every point "
            "is an independent input, as in Balduzzi et al. 2017.",
    "running": "the net's own BN running statistics (eval mode), e.g. after training on grid1d; "
               "an untrained net has mean 0 / variance 1 there, i.e. no normalisation at all.",
}
MAX_CORR_POINTS = 128   # heatmap side: a 256x256 matrix is slow to ship to a browser


def _as_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    p = next(model.parameters())
    return x.detach().to(device=p.device, dtype=p.dtype)


def _detached_copy(model: nn.Module) -> nn.Module:
    """Deep copy with no hooks (a caller's probes must not see our passes) and no grads."""
    frozen = copy.deepcopy(model)
    for m in frozen.modules():
        m._forward_hooks.clear()
        m._forward_pre_hooks.clear()
        m._backward_hooks.clear()
        m._backward_pre_hooks.clear()
    for p in frozen.parameters():
        p.grad = None
        p.requires_grad_(False)   # only input gradients are wanted: skip weight grads
    return frozen


def freeze_bn_on(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """A copy of ``model`` whose BN layers use statistics of the grid ``x``, in eval mode.

    Why (Balduzzi et al. 2017; our measured pitfalls in ``science.md``): in BN train mode
    the samples of a batch are coupled through the batch mean and variance, so the
    gradient of Σ_i f(x_i) with respect to x_i is *not* df_i/dx_i. Freezing the statistics
    makes each point independent, while keeping the mean-centring that shattering needs
    (without normalisation the net is positively homogeneous and its gradient barely
    changes with depth). The statistics are a cumulative average (momentum=None) over one
    no-grad forward in train mode; the variance is stored biased, as train mode uses it,
    so the frozen net reproduces the train-mode outputs on the grid exactly.

    The caller's model is untouched (mode, buffers, parameters, ``.grad``).
    """
    frozen = _detached_copy(model)
    counts: dict[nn.Module, int] = {}
    handles = []
    for m in frozen.modules():
        if isinstance(m, _BN):
            if not m.track_running_stats:
                raise ValueError("a BatchNorm layer without running statistics cannot be frozen")
            m.reset_running_stats()
            m.momentum = None   # cumulative average: after one batch, exactly its statistics
            handles.append(m.register_forward_pre_hook(
                lambda mod, inp: counts.__setitem__(mod, inp[0].numel() // inp[0].shape[1])))
    frozen.train()
    with torch.no_grad():
        frozen(_as_input(frozen, x))
    for h in handles:
        h.remove()
    for m, n in counts.items():
        # Stored variance is unbiased (n-1); train mode normalises with the biased one (n).
        m.running_var.mul_((n - 1) / n)
    return frozen.eval()


def frozen_copy(model: nn.Module, x: torch.Tensor, bn: str = "grid") -> nn.Module:
    """Independent-point copy of ``model``: BN frozen on ``x`` ("grid") or on its own
    running statistics ("running")."""
    if bn not in BN_MODES:
        raise ValueError(f"bn must be one of {', '.join(BN_MODES)} (got {bn!r})")
    return freeze_bn_on(model, x) if bn == "grid" else _detached_copy(model).eval()


def _check_grid(x: torch.Tensor) -> None:
    if x.dim() != 2 or x.shape[1] != 1 or x.shape[0] < 2:
        raise ValueError("the grid must have shape (n, 1) with n >= 2, one scalar input per point "
                         f"(got {tuple(x.shape)})")


def input_gradients(model: nn.Module, x: torch.Tensor, output_index: int = 0,
                    bn: str = "grid") -> torch.Tensor:
    """df/dx at every grid point, f = logits[:, output_index], in ONE backward pass.

    Balduzzi et al. 2017, Fig. 1. Valid because the frozen copy treats points
    independently, so d(Σ_i f(x_i))/dx_i = df(x_i)/dx_i. ``x``: (n, 1); returns (n,) on CPU.
    """
    _check_grid(x)
    return batched_pass(frozen_copy(model, x, bn), x, output_index)


def per_point_gradients(model: nn.Module, x: torch.Tensor, output_index: int = 0,
                        bn: str = "grid") -> torch.Tensor:
    """Reference for ``input_gradients``: one autograd.grad per point on the same frozen copy.

    Slow (n backward passes); used by the tests and ``bench/bench_shatter.py``.
    """
    _check_grid(x)
    return per_point_pass(frozen_copy(model, x, bn), x, output_index)


def batched_pass(net: nn.Module, x: torch.Tensor, output_index: int = 0) -> torch.Tensor:
    """df/dx for all points of (n, 1) ``x`` on an already frozen net: one backward pass."""
    xg = _as_input(net, x).requires_grad_(True)
    out = net(xg)[:, output_index]                        # (n,)
    (grad,) = torch.autograd.grad(out.sum(), xg)
    return grad[:, 0].detach().cpu()


def per_point_pass(net: nn.Module, x: torch.Tensor, output_index: int = 0) -> torch.Tensor:
    """df/dx point by point on an already frozen net: n forward and backward passes."""
    xs = _as_input(net, x)
    grads = []
    for i in range(xs.shape[0]):
        xi = xs[i:i + 1].clone().requires_grad_(True)     # (1, 1)
        (g,) = torch.autograd.grad(net(xi)[0, output_index], xi)
        grads.append(g[0, 0])
    return torch.stack(grads).detach().cpu()


def _last_linear(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the net's head has no Linear layer to read features before")
    return linears[-1]


def feature_gradients(model: nn.Module, x: torch.Tensor, bn: str = "grid") -> torch.Tensor:
    """d h_k/dx for every unit k of the last hidden representation h (the input of the
    head's final Linear), at every grid point: (n, width), on CPU.

    One forward-mode pass (``torch.autograd.forward_ad``) with tangent 1 on the scalar
    input gives the whole Jacobian column at once. These are the per-unit gradients whose
    correlations across points Balduzzi et al. 2017 study (their covariance matrices).
    """
    _check_grid(x)
    net = frozen_copy(model, x, bn)
    xs = _as_input(net, x)
    seen: list[torch.Tensor] = []
    handle = _last_linear(net).register_forward_pre_hook(lambda m, inp: seen.append(inp[0]))
    try:
        with fwAD.dual_level(), torch.no_grad():
            net(_make_dual(xs, torch.ones_like(xs)))
            tangent = fwAD.unpack_dual(seen[0]).tangent   # (n, width)
    finally:
        handle.remove()
    return tangent.detach().cpu()


def _make_dual(primal: torch.Tensor, tangent: torch.Tensor) -> torch.Tensor:
    # torch 2.13 loads its forward-AD rules lazily through the deprecated torch.jit.script;
    # silence only that internal warning, it says nothing about this code.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated",
                                category=DeprecationWarning)
        return fwAD.make_dual(primal, tangent)


# --- reports -----------------------------------------------------------------------------

def make_grid(n: int = 256, lo: float = -2.0, hi: float = 2.0) -> torch.Tensor:
    """n evenly spaced scalar inputs in [lo, hi], shape (n, 1) (Balduzzi et al.: 256 in [-2, 2])."""
    if n < 8 or not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"the grid needs at least 8 points and lo < hi (got n={n}, lo={lo}, hi={hi})")
    return torch.linspace(lo, hi, n).unsqueeze(1)


def shatter_model(spec: ExperimentSpec) -> nn.Module:
    """The initialised 1-input MLP of ``spec`` (the analysis needs a scalar input)."""
    if spec.model != "mlp":
        raise ValueError("the shattered-gradients analysis needs the MLP (model='mlp') with a 1-D input")
    return build_model(spec, input_shape=(1,))


def _corr_step(n: int, limit: int = MAX_CORR_POINTS) -> int:
    return math.ceil(n / limit)


def shatter_report(spec: ExperimentSpec, model: nn.Module | None = None, n: int = 256,
                   lo: float = -2.0, hi: float = 2.0, bn: str = "grid") -> dict[str, Any]:
    """Everything the shattered-gradients page shows, JSON-safe (Balduzzi et al. 2017).

    Gradients of f(x) = logits[:, 0] over n grid points in [lo, hi]; their autocorrelation
    (lags 0..n//2), lag-1 value and spectrum slope; the point-by-point correlation of the
    last hidden layer's unit gradients (downsampled to at most 128x128). Builds the net
    from ``spec`` (at init) when ``model`` is None.
    """
    x = make_grid(n, lo, hi)
    model = shatter_model(spec) if model is None else model
    g = input_gradients(model, x, 0, bn).double().numpy()
    ac = autocorrelation(g)
    step = _corr_step(n)   # every step-th point: the heatmap stays <= 128x128
    # Features on the full grid (BN frozen on all n points), then keep every step-th row.
    C = correlation_matrix(feature_gradients(model, x, bn)[::step].double().numpy())
    return {
        "spec": spec.to_dict(), "x": x[:, 0].tolist(), "gradients": g.tolist(),
        "autocorr": ac.tolist(), "lag1": float(ac[1]), "spectrum_slope": spectrum_slope(g),
        "corr_matrix": C.tolist(), "corr_x": x[::step, 0].tolist(), "bn_mode": BN_MODES[bn],
    }


def lag1(spec: ExperimentSpec, n: int = 256) -> float:
    """Lag-1 autocorrelation of df/dx for the initialised net of ``spec``."""
    return float(autocorrelation(input_gradients(shatter_model(spec), make_grid(n)), 1)[1])


def lag1_vs_depth(depths: Sequence[int], kinds: Sequence[str] = ("none", "identity"),
                  betas: Sequence[float] = (1.0,), seeds: Sequence[int] = (0, 1, 2),
                  width: int = 200, n: int = 256, norm: str = "batch",
                  progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
    """Mean and std over seeds of the lag-1 gradient autocorrelation, by depth.

    One curve per (kind, β); β is ignored for plain nets (one curve). Theory curves give
    the *rate* of decay, not its level: plain c·2^-L (Balduzzi et al. Theorem 1) and ResNet
    min(1, c/(β·√L)) (Theorem 3). The constant c is fitted once per kind so the curve of the
    kind's first β passes through its measured mean at the smallest depth; it is shared
    across β, so the 1/β factor of Theorem 3 stays visible. ``noise_floor`` = 1/√n is the
    typical |lag-1| of white noise of n points. ``norm="none"`` shows the pitfall (no
    shattering without normalisation); ``progress(fraction, message)`` is called per depth.
    """
    depths = sorted(int(d) for d in depths)
    if not depths or not seeds:
        raise ValueError("give at least one depth and one seed")
    combos = [(k, float(b)) for k in kinds for b in ((1.0,) if k == "none" else betas)]
    curves, theory, scales = [], [], {}
    for i, (kind, beta) in enumerate(combos):
        runs = []
        for j, d in enumerate(depths):
            runs.append([lag1(ExperimentSpec(model="mlp", dataset="grid1d", width=width, depth=d,
                                             shortcut=kind, residual_scale=beta, norm=norm,
                                             seed=s), n) for s in seeds])
            if progress:
                progress((i * len(depths) + j + 1) / (len(combos) * len(depths)),
                         f"depth {d}, {kind} β={beta:g}")
        mean = [float(np.mean(r)) for r in runs]
        curves.append({"kind": kind, "beta": beta, "lag1": runs, "mean": mean,
                       "std": [float(np.std(r)) for r in runs]})
        shape = _theory_shape(kind, beta, depths)
        scale = scales.setdefault(kind, mean[0] / shape[0])   # fitted on the kind's first β
        theory.append(_theory_curve(kind, beta, [scale * v for v in shape]))
    return {"depths": depths, "n": n, "width": width, "seeds": list(seeds), "curves": curves,
            "theory": theory, "noise_floor": 1.0 / math.sqrt(n),
            "note": "theory curves show decay rates: one constant per kind, fitted to the "
                    "measured mean of its first β at the smallest depth"}


def _theory_shape(kind: str, beta: float, depths: list[int]) -> list[float]:
    if kind == "none":
        return [2.0 ** -d for d in depths]
    return [1.0 / (max(beta, 1e-12) * math.sqrt(d)) for d in depths]


def _theory_curve(kind: str, beta: float, values: list[float]) -> dict[str, Any]:
    name = ("plain: 2^-L (Balduzzi et al. Thm 1)" if kind == "none"
            else f"ResNet β={beta:g}: 1/(β√L) (Thm 3)")
    return {"kind": kind, "beta": beta, "name": name, "values": [min(1.0, v) for v in values]}
