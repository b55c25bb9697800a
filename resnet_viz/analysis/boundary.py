"""Decision boundaries of a trained net on a 2-D toy dataset (the TensorFlow Playground view).

The net's probability of class 1 on a regular grid covering the data, computed in eval mode
(BN uses its running statistics, so each grid point is classified on its own) without
gradients, in batches. Plain data out, so ``figures/boundary.py`` can draw it and the run
store can keep it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

MAX_GRID = 400              # points per side at most: n² forward passes
BATCH = 8192


def _as_points(x_train: Any) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x_train, dtype=np.float32)) if not isinstance(x_train, torch.Tensor) \
        else x_train.detach().to("cpu", torch.float32)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError("decision boundaries need 2-D inputs (spirals, circles, xor, moons, "
                         f"gaussians); got inputs of shape {tuple(x.shape)}")
    x = x[torch.isfinite(x).all(1)]
    if not len(x):
        raise ValueError("decision boundaries need at least one finite data point")
    return x


@torch.no_grad()
def decision_grid(model: nn.Module, x_train: Any, n: int = 100, margin: float = 0.5) -> dict[str, Any]:
    """P(class 1) on an ``n`` × ``n`` grid spanning ``x_train`` plus ``margin`` on each side.

    Returns ``{"xx": [n floats], "yy": [n floats], "prob": n rows (one per yy) of n floats,
    "n": n}``, ready for ``go.Contour(x=xx, y=yy, z=prob)``. Runs on the model's device;
    the train/eval mode of every submodule is restored afterwards. A model with one output
    is read as a logit (sigmoid), otherwise softmax over classes, class 1's column.
    """
    pts = _as_points(x_train)
    n = int(min(max(int(n), 2), MAX_GRID))
    lo, hi = pts.min(0).values - margin, pts.max(0).values + margin
    xs = torch.linspace(float(lo[0]), float(hi[0]), n)
    ys = torch.linspace(float(lo[1]), float(hi[1]), n)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")                 # (n, n); row i is ys[i]
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)    # (n², 2)
    param = next(model.parameters(), None)
    device, dtype = (param.device, param.dtype) if param is not None else (torch.device("cpu"), torch.float32)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()   # what the net predicts at test time: its own (precise-BN) statistics
    try:
        probs = torch.cat([_prob1(model(grid[i:i + BATCH].to(device, dtype))).float().cpu()
                           for i in range(0, len(grid), BATCH)])
    finally:
        for m, mode in modes:
            m.training = mode
    return {"xx": xs.tolist(), "yy": ys.tolist(), "prob": probs.reshape(n, n).tolist(), "n": n}


def _prob1(out: torch.Tensor) -> torch.Tensor:
    if out.ndim == 1 or out.shape[1] == 1:
        return torch.sigmoid(out.reshape(-1))
    return torch.softmax(out, dim=1)[:, 1]
