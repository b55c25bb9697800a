"""Lesion studies: delete residual blocks at test time and measure what is lost.

Veit, Wilber & Belongie 2016, "Residual Networks Behave Like Ensembles of Relatively Shallow
Networks", §4: deleting one block of a trained ResNet (y_i = y_{i-1}) barely changes its test
error, except for the downsampling blocks, while deleting a layer of a plain (VGG-like) net
sends it to chance (their Fig. 3). Removing more and more blocks degrades a ResNet smoothly
(their Fig. 5a), as an ensemble loses members one by one.

``Net.forward`` routes a block listed in ``Net.lesion`` through ``Block.lesioned``: its
shortcut, or a parameter-free identity / pad for a plain block, so plain and residual nets are
lesioned the same way.

BN mode: eval, as at test time in the paper, on the statistics the stored net carries
(``Trainer.weights`` re-estimates them for the final weights: precise BN, Wu & Johnson 2021).
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from resnet_viz.nets.blocks import Block, PadShortcut


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and an empty lesion for the duration; both restored afterwards."""
    was_training = model.training
    lesion = getattr(model, "lesion", frozenset())
    model.eval()
    try:
        yield model
    finally:
        model.lesion = lesion
        model.train(was_training)


def is_downsampling(block: Block) -> bool:
    """True when the block changes the tensor's shape (stride or channel count).

    Veit et al. Fig. 3: these are the blocks whose deletion does hurt a ResNet.
    """
    skip = block.skip
    return isinstance(skip, PadShortcut) and (skip.stride > 1 or skip.in_ch != skip.out_ch)


@torch.no_grad()
def _accuracy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   batch_size: int) -> tuple[float, float]:
    """Accuracy (fraction) and mean cross-entropy (nats) over all of x, in batches."""
    device = next(model.parameters()).device
    correct, loss_sum = 0, 0.0
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].to(device)
        yb = y[start:start + batch_size].to(device)
        logits = model(xb)                                     # (B, n_classes)
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    return correct / len(x), loss_sum / len(x)


def _check_data(x: torch.Tensor, y: torch.Tensor) -> None:
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"the lesion study needs a non-empty batch with one label per example "
                         f"(got {len(x)} inputs and {len(y)} labels)")


def evaluate_lesioned(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      deleted: Iterable[int] = (), batch_size: int = 512) -> tuple[float, float]:
    """(accuracy, loss) with the blocks in ``deleted`` removed; model state restored."""
    _check_data(x, y)
    with evaluating(model):
        model.lesion = frozenset(int(i) for i in deleted)
        return _accuracy_loss(model, x, y, batch_size)


def lesion_study(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 batch_size: int = 512) -> dict:
    """Delete each block in turn and measure test accuracy (Veit et al. 2016, §4, Fig. 3).

    Returns ``{"baseline_acc", "baseline_loss", "acc", "loss", "acc_drop", "downsampling"}``:
    accuracies are fractions in [0, 1], losses mean cross-entropy in nats, and the last four
    are lists with one entry per block (``acc_drop = baseline_acc - acc``). The model's mode,
    lesion and weights are left as they were; no gradients are computed.

    Example: ``lesion_study(net, x_val, y_val)["acc_drop"][3]`` is what block 3 is worth.
    """
    n = len(model.blocks)
    base_acc, base_loss = evaluate_lesioned(model, x, y, (), batch_size)
    accs, losses = [], []
    for i in range(n):
        acc, loss = evaluate_lesioned(model, x, y, (i,), batch_size)
        accs.append(acc)
        losses.append(loss)
    return {"baseline_acc": base_acc, "baseline_loss": base_loss, "acc": accs, "loss": losses,
            "acc_drop": [base_acc - a for a in accs],
            "downsampling": [is_downsampling(b) for b in model.blocks]}


def lesion_random_k(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    max_k: int | None = None, trials: int = 5, seed: int = 0,
                    exclude: Iterable[int] = (), batch_size: int = 512) -> dict:
    """Delete k random blocks at once, k = 0..max_k (Veit et al. 2016, §4, Fig. 5a).

    For each k, ``trials`` subsets are drawn (seeded) from the blocks not in ``exclude``
    (e.g. the first block or the downsampling ones); returns ``{"k", "acc_mean", "acc_std",
    "loss_mean"}`` (fractions / nats). A ResNet degrades smoothly, like an ensemble losing
    members; a plain net collapses at k = 1.
    """
    excluded = set(int(i) for i in exclude)
    pool = [i for i in range(len(model.blocks)) if i not in excluded]
    max_k = len(pool) if max_k is None else min(int(max_k), len(pool))
    if trials < 1:
        raise ValueError(f"trials must be at least 1 (got {trials})")
    rng = random.Random(seed)
    out: dict[str, list] = {"k": [], "acc_mean": [], "acc_std": [], "loss_mean": []}
    for k in range(max_k + 1):
        subsets = [rng.sample(pool, k) for _ in range(trials if 0 < k < len(pool) else 1)]
        results = torch.tensor([evaluate_lesioned(model, x, y, s, batch_size) for s in subsets],
                               dtype=torch.float64)             # (trials, 2)
        out["k"].append(k)
        out["acc_mean"].append(results[:, 0].mean().item())
        out["acc_std"].append(results[:, 0].std(unbiased=False).item())
        out["loss_mean"].append(results[:, 1].mean().item())
    return out
