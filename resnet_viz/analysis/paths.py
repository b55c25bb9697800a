"""Residual nets as ensembles of paths: how many paths of each length, how much gradient each carries.

Veit, Wilber & Belongie 2016, "Residual Networks Behave Like Ensembles of Relatively Shallow
Networks". Unrolling n residual blocks y_i = y_{i-1} + f_i(y_{i-1}) gives 2^n paths; a path
that goes through k residual branches (and the skip of the others) has length k, so lengths
are binomially distributed (§3, Eq. 3). In §6 they measure the gradient that reaches the
input through paths of one length only: forward normally, but in the backward pass go through
the branch of k sampled blocks and the skip of all the others. It falls exponentially with
k (their Fig. 6b); weighted by the number of paths (Fig. 6c) almost all gradient comes from
short paths (ResNet-110: lengths 5-17, 0.45% of all paths).
"""
from __future__ import annotations

import math
import random
from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from resnet_viz.analysis.lesion import evaluating


def path_length_distribution(n_blocks: int) -> list[float]:
    """Fraction of the 2^n paths through ``n_blocks`` residual blocks with each length k = 0..n.

    Binomial(n, 1/2) (Veit et al. 2016, §3): C(n, k) / 2^n. Exact for any n (integer maths).
    """
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 0:
        raise ValueError(f"the number of blocks must be a whole number ≥ 0 (got {n_blocks!r})")
    total = 2 ** n_blocks
    return [math.comb(n_blocks, k) / total for k in range(n_blocks + 1)]


def _detach_output(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    # Same value forward, no gradient backward: this is what cuts one side of the block.
    return output.detach()


@contextmanager
def route_backward(model: nn.Module, branch_blocks: Iterable[int]) -> Iterator[nn.Module]:
    """Inside this context, backward passes take one path (Veit et al. 2016, §6).

    Blocks in ``branch_blocks`` pass gradient only through their residual branch (the
    shortcut output is detached); every other block only through its shortcut (the branch
    output is detached). The forward values are unchanged. Done with forward hooks on the
    blocks' ``shortcut_out`` / ``branch_out`` taps, removed on exit, so blocks.py is untouched.
    For a Highway block the "skip" side is the carry term (1 - T(x))·x, gate included.
    """
    chosen = set(int(i) for i in branch_blocks)
    handles = []
    try:
        for i, block in enumerate(model.blocks):
            tap = block.shortcut_out if i in chosen else block.branch_out
            handles.append(tap.register_forward_hook(_detach_output))
        yield model
    finally:
        for h in handles:
            h.remove()


def _require_shortcuts(model: nn.Module) -> None:
    plain = [i for i, b in enumerate(model.blocks) if not b.has_shortcut]
    if plain:
        raise ValueError("paths exist only when every block has a shortcut: a plain block has "
                         f"a single route through it (blocks without a shortcut: {plain})")


def path_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  branch_blocks: Iterable[int]) -> torch.Tensor:
    """∂(summed cross-entropy)/∂(stem output) through one path: a branch in ``branch_blocks``, skips elsewhere.

    Returns a tensor shaped like the stem output (B, ...), row b being example b's own
    gradient (the model runs in eval mode, so examples do not interact through BN).
    Model mode, lesion and parameter ``.grad`` are left as they were.
    """
    _require_shortcuts(model)
    device = next(model.parameters()).device
    captured: list[torch.Tensor] = []

    def cut_at_stem(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        h = output.detach().requires_grad_(True)  # the input of the first block
        captured.append(h)
        return h

    stem_handle = model.stem.register_forward_hook(cut_at_stem)
    try:
        with evaluating(model), route_backward(model, branch_blocks), torch.enable_grad():
            model.lesion = frozenset()
            logits = model(x.to(device))                              # (B, n_classes)
            loss = F.cross_entropy(logits, y.to(device), reduction="sum")
            # autograd.grad with explicit inputs never writes parameter .grad.
            (grad,) = torch.autograd.grad(loss, captured[0])
    finally:
        stem_handle.remove()
    return grad


def _batch(x: torch.Tensor, y: torch.Tensor, size: int,
           gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.randperm(len(x), generator=gen)[:size]
    return x[idx], y[idx]


def gradient_by_path_length(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                            lengths: Sequence[int] | None = None, samples: int = 20,
                            batch_size: int = 128, seed: int = 0) -> dict:
    """Gradient magnitude reaching the first block through paths of each length (Veit et al. 2016, §6).

    For each length k, ``samples`` times: draw k blocks and a batch (both seeded), backprop
    through the branch of those k blocks and the skip of the rest, and take the mean over
    examples of ‖∂ℓ/∂h‖ (h: stem output, ℓ: the example's cross-entropy). Returns
    ``{"n_blocks", "lengths", "grad_norm", "grad_std", "distribution", "effective"}``, lists
    aligned with ``lengths`` (default 0..n): ``distribution`` the fraction of paths of that
    length, ``effective = distribution × grad_norm`` (their Fig. 6c: the gradient all paths of
    that length contribute, up to the constant 2^n). Raises ValueError for plain nets.
    """
    _require_shortcuts(model)
    n = len(model.blocks)
    lengths = list(range(n + 1)) if lengths is None else [int(k) for k in lengths]
    bad = [k for k in lengths if not 0 <= k <= n]
    if bad:
        raise ValueError(f"path lengths must lie between 0 and {n}, the number of blocks (got {bad})")
    if samples < 1 or len(x) == 0:
        raise ValueError(f"need at least one sample and one example (got samples={samples}, "
                         f"{len(x)} examples)")
    rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
    dist = path_length_distribution(n)
    norms, stds = [], []
    for k in lengths:
        vals = torch.tensor([_sample_norm(model, x, y, rng.sample(range(n), k), batch_size, gen)
                             for _ in range(samples)], dtype=torch.float64)
        norms.append(vals.mean().item())
        stds.append(vals.std(unbiased=False).item())
    return {"n_blocks": n, "lengths": lengths, "grad_norm": norms, "grad_std": stds,
            "distribution": [dist[k] for k in lengths],
            "effective": [dist[k] * g for k, g in zip(lengths, norms)]}


def _sample_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chosen: list[int],
                 batch_size: int, gen: torch.Generator) -> float:
    xb, yb = _batch(x, y, batch_size, gen)
    grad = path_gradient(model, xb, yb, chosen)                       # (B, ...)
    return grad.flatten(1).norm(dim=1).mean().item()
