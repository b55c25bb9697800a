"""Test helper: a tiny, self-contained trainer on sklearn's 8x8 digits.

Independent of ``resnet_viz.train.trainer`` on purpose, so analysis tests do not break when the
trainer changes. Plain SGD with momentum 0.9, batch 128, a seeded batch order.
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from resnet_viz.nets.models import Net, build_model
from resnet_viz.spec import ExperimentSpec


@lru_cache(maxsize=1)
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as (N, 1, 8, 8) float32 (pixels/16, standardised) and int64 labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    x = (x - x.mean()) / x.std()
    return x.reshape(-1, 1, 8, 8), torch.tensor(d.target, dtype=torch.int64)


def split(seed: int = 0, n_val: int = 400) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_val, y_val): a seeded shuffle, the last ``n_val`` held out."""
    x, y = digits()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    tr, va = perm[:-n_val], perm[-n_val:]
    return x[tr], y[tr], x[va], y[va]


def quick_train(spec: ExperimentSpec, steps: int) -> tuple[Net, torch.Tensor, torch.Tensor]:
    """Train ``build_model(spec)`` for ``steps`` SGD steps; return (model in eval mode, x_val, y_val).

    The held-out split is returned because Veit et al. lesion the *test* set.
    """
    x_tr, y_tr, x_val, y_val = split(spec.seed)
    model = build_model(spec)
    opt = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=0.9)
    gen = torch.Generator().manual_seed(spec.seed)
    order = torch.randperm(len(x_tr), generator=gen)
    pos = 0
    model.train()
    for _ in range(steps):
        if pos + 128 > len(order):
            order, pos = torch.randperm(len(x_tr), generator=gen), 0
        idx = order[pos:pos + 128]
        pos += 128
        loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    opt.zero_grad(set_to_none=True)  # analyses must start from a model with no .grad
    model.eval()
    return model, x_val, y_val


@lru_cache(maxsize=1)
def flat_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All digits as flat (N, 64) vectors standardised per pixel: the landscape and
    singularity tests' input (their thresholds were calibrated on it)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-3)
    return x, torch.tensor(d.target)


def sgd_train(spec: ExperimentSpec, x: torch.Tensor, y: torch.Tensor, steps: int = 300) -> torch.nn.Module:
    """Tiny SGD loop (lr 0.1, momentum 0.9, batch 128) with a seeded batch order; returns the
    net in eval mode."""
    net = build_model(spec)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(spec.seed)
    perm, j = torch.randperm(len(x), generator=gen), 0
    for _ in range(steps):
        if j + 128 > len(x):
            perm, j = torch.randperm(len(x), generator=gen), 0
        idx, j = perm[j:j + 128], j + 128
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()

