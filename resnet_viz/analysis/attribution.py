"""Which input pixels and which residual blocks a prediction depends on (captum 0.9).

- Saliency (Simonyan et al. 2014, arXiv:1312.6034): ``|∂y_c/∂x|``, one backward pass.
- Integrated gradients (Sundararajan et al. 2017, arXiv:1703.01365):
  ``(x − x')·∫₀¹ ∂y_c(x' + a(x − x'))/∂x da``. Its attributions sum to ``y_c(x) − y_c(x')``
  (completeness); the gap left by the Riemann/Gauss-Legendre sum is the convergence delta.
- Per-block attribution at each block's branch output ``F(x)`` (the ``branch_out`` tap):
  gradient × activation (Shrikumar et al. 2016, arXiv:1605.01713) or layer conductance
  (Dhamdhere et al. 2018, arXiv:1805.12233), summed over the tap and averaged over the batch.

Every function runs on a private eval-mode copy of the model without hooks, with frozen
parameters: the caller's model (possibly being trained in another thread, with probe hooks
attached) and tensors are never touched, and no ``.grad`` is left anywhere.
"""
from __future__ import annotations

import copy
import math
from typing import Callable, Sequence

import torch
import torch.nn as nn
from captum.attr import IntegratedGradients, LayerConductance, LayerGradientXActivation, Saliency

Target = int | Sequence[int] | torch.Tensor
N_STEPS_RANGE = (4, 200)
BLOCK_METHODS = ("grad_x_act", "conductance")


def eval_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode, with no hooks and parameters that need no gradient.

    Eval mode matters beyond tidiness: in train mode BatchNorm would mix the interpolation
    steps IG stacks into one batch, so an example's attribution would depend on its path-mates
    (Sundararajan et al. 2017 attribute the test-time function). The statistics are those the
    stored net carries, re-estimated for its weights by ``Trainer.weights`` (precise BN).
    """
    # Seeding deepcopy's memo with empty dicts gives the copy fresh hook tables: training
    # probes never see attribution passes and their closures (locks, buffers) are not copied.
    memo: dict[int, object] = {}
    for m in model.modules():
        for name, val in vars(m).items():
            if "hooks" in name and isinstance(val, dict):
                memo[id(val)] = type(val)()
    twin = copy.deepcopy(model, memo)
    twin.eval()
    for p in twin.parameters():
        p.requires_grad_(False)  # gradients are wanted w.r.t. inputs only
    return twin


def clip_steps(n_steps: int) -> int:
    """``n_steps`` clipped to ``N_STEPS_RANGE``: fewer is too coarse, more only costs time."""
    lo, hi = N_STEPS_RANGE
    return int(min(max(int(n_steps), lo), hi))


def _device(net: nn.Module) -> torch.device:
    p = next(net.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _prepare(x: torch.Tensor, net: nn.Module) -> torch.Tensor:
    """A private float copy on the model's device (captum toggles ``requires_grad`` on it)."""
    if x.dim() < 2:
        raise ValueError(f"expected a batch of inputs (B, ...), got shape {tuple(x.shape)}")
    # requires_grad up front: captum would otherwise set it and warn.
    return x.detach().to(_device(net), dtype=torch.float32).clone().requires_grad_(True)


def _target(target: Target, batch: int, device: torch.device) -> int | torch.Tensor:
    if isinstance(target, int):
        return target
    t = torch.as_tensor(target, dtype=torch.long, device=device).reshape(-1)
    if t.numel() == 1:
        return int(t.item())
    if t.numel() != batch:
        raise ValueError(f"need one target per example: {batch} (got {t.numel()})")
    return t


def _baseline(baseline: torch.Tensor | float | None,
              inp: torch.Tensor) -> torch.Tensor | float | None:
    if isinstance(baseline, torch.Tensor):  # a private copy, broadcast to the batch
        return baseline.detach().to(inp.device, dtype=inp.dtype).expand_as(inp).clone()
    return baseline


def saliency(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """Absolute input gradient of the target logit (Simonyan et al. 2014, §3.1).

    Example: a digits CNN, ``x`` of shape (4, 1, 8, 8), ``target=3`` -> (4, 1, 8, 8) tensor
    of ``|∂y_3/∂x|``, on ``x``'s device. Channels are kept; take the max over them for a map.
    """
    net = eval_copy(model)
    inp = _prepare(x, net)
    attr = Saliency(net).attribute(inp, target=_target(target, len(inp), inp.device), abs=True)
    return attr.detach().to(x.device)


class _ProgressForward:
    """The model's forward, reporting the fraction of IG path points evaluated so far."""

    def __init__(self, net: nn.Module, total: int, progress: Callable[[float], None]) -> None:
        self.net, self.total, self.progress, self.done = net, total, progress, 0

    def __call__(self, inp: torch.Tensor) -> torch.Tensor:
        out = self.net(inp)
        if self.done < self.total:  # the convergence-delta passes that follow are not counted
            self.done = min(self.total, self.done + inp.shape[0])
            self.progress(self.done / self.total)
        return out


def integrated_gradients(model: nn.Module, x: torch.Tensor, target: Target, n_steps: int = 32,
                         baseline: torch.Tensor | float | None = None,
                         internal_batch_size: int = 64,
                         progress: Callable[[float], None] | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrated gradients and the completeness gap (Sundararajan et al. 2017, Prop. 1).

    ``baseline`` defaults to zeros: for standardised inputs that is the dataset's mean
    pixel. ``n_steps`` is clipped to [4, 200]; at most ``internal_batch_size`` path points
    go through the net at once. ``progress(fraction)`` is called after each chunk.

    Example: ``x`` (2, 1, 8, 8), ``target=[3, 7]`` -> ``(attr, delta)`` with ``attr`` of
    shape (2, 1, 8, 8) and ``delta`` (2,) = ``attr.sum() − (y(x) − y(x'))`` per example.
    """
    net = eval_copy(model)
    inp = _prepare(x, net)
    steps, batch = clip_steps(n_steps), len(inp)
    base = _baseline(baseline, inp)
    # Small chunks when someone watches, so the bar moves about eight times.
    chunk = max(batch, int(internal_batch_size))
    forward: Callable[[torch.Tensor], torch.Tensor] = net
    if progress is not None:
        chunk = max(batch, min(chunk, batch * math.ceil(steps / 8)))
        forward = _ProgressForward(net, steps * batch, progress)
    attr, delta = IntegratedGradients(forward).attribute(
        inp, baselines=base, target=_target(target, batch, inp.device), n_steps=steps,
        internal_batch_size=chunk, return_convergence_delta=True)
    return attr.detach().to(x.device), delta.detach().to(x.device)


def block_attribution(model: nn.Module, x: torch.Tensor, target: Target,
                      method: str = "grad_x_act", n_steps: int = 16,
                      baseline: torch.Tensor | float | None = None) -> list[float]:
    """How much each residual block's branch output ``F(x)`` pushes the target logit.

    ``method="grad_x_act"``: ``Σ ∂y_c/∂F · F`` at the ``branch_out`` tap (Shrikumar et al.
    2016); ``"conductance"``: captum ``LayerConductance`` of the tap from ``baseline``
    (default zeros) to ``x`` with ``n_steps`` steps (Dhamdhere et al. 2018, Eq. 3). In a
    plain block the tap is the block's whole pre-activation output. Each value is summed over
    the tap and averaged over the batch; lesioned blocks (never run) get 0.0.

    Example: a 20-layer CNN (9 blocks), ``x`` (8, 1, 8, 8), ``target=2`` -> list of 9 floats.
    """
    if method not in BLOCK_METHODS:
        raise ValueError(f"method must be one of {', '.join(BLOCK_METHODS)} (got {method!r})")
    net = eval_copy(model)
    inp = _prepare(x, net)
    t = _target(target, len(inp), inp.device)
    blocks = list(getattr(net, "blocks", ()))
    live = [i for i in range(len(blocks)) if i not in getattr(net, "lesion", frozenset())]
    values = [0.0] * len(blocks)
    if not live:
        return values
    taps = [blocks[i].branch_out for i in live]
    if method == "grad_x_act":
        # One forward/backward for all taps: captum accepts a list of layers.
        attrs = LayerGradientXActivation(net, taps).attribute(inp, target=t)
    else:
        steps = clip_steps(n_steps)
        attrs = [LayerConductance(net, tap).attribute(inp, baselines=_baseline(baseline, inp), target=t,
                                                      n_steps=steps)
                 for tap in taps]
    for i, a in zip(live, attrs):
        values[i] = float(a.detach().flatten(1).sum(1).mean())
    return values
