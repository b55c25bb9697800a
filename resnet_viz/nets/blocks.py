"""Residual blocks whose shortcut is the only difference between plain and residual nets.

He et al. 2016 (arXiv:1512.03385): H(x) = F(x) + x. Option A shortcuts are parameter-free
(stride-slice + zero-padded channels), option B projects with a 1x1 conv only where the
shape changes. Highway networks (Srivastava et al. 2015) gate the two paths:
y = T(x)·F(x) + (1 − T(x))·x.

Every tensor a probe needs has its own named ``nn.Identity`` tap (``branch_out``,
``shortcut_out``, ``gate_out``, ``sum_out``) and every nonlinearity is its own module used
once, never in place: hooks and captum then see exactly one tensor per module.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "tanh": lambda: nn.Tanh(),
    "gelu": lambda: nn.GELU(),
}


def make_act(name: str) -> nn.Module:
    """A fresh activation module for one use (never shared, never in place)."""
    return _ACTIVATIONS[name]()


def make_norm(kind: str, channels: int, dims: int) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)


class PadShortcut(nn.Module):
    """Option A: identity, stride-sliced and zero-padded in channels when the shape changes.

    Parameter-free, so a plain net and its option-A twin have identical parameters.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.in_ch, self.out_ch, self.stride = in_ch, out_ch, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]    # (B, C, H/s, W/s)
        extra = self.out_ch - self.in_ch
        if extra:
            # Pad (W, H, C) dims: zeros in the new channels, split like the reference impl.
            x = F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))
        return x


def projection(in_ch: int, out_ch: int, stride: int, norm: str) -> nn.Module:
    """Option B: 1x1 conv + BN, used only where the shape changes."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                         make_norm(norm, out_ch, 2))


def make_shortcut(kind: str, in_ch: int, out_ch: int, stride: int, norm: str,
                  conv: bool) -> nn.Module | None:
    """The shortcut module for one block, or None for a plain block."""
    if kind == "none":
        return None
    if in_ch == out_ch and stride == 1:
        return nn.Identity()
    if kind == "projection" and conv:
        return projection(in_ch, out_ch, stride, norm)
    return PadShortcut(in_ch, out_ch, stride)


def make_gate(channels: int, conv: bool) -> nn.Module:
    """Highway transform gate T(x) = σ(W_T x + b_T); bias set negative by ``init_weights``."""
    lin = nn.Conv2d(channels, channels, 1) if conv else nn.Linear(channels, channels)
    return nn.Sequential(lin, nn.Sigmoid())


class Block(nn.Module):
    """y = post(shortcut(x) + α·F(x)); with no shortcut, y = post(F(x)).

    ``branch`` computes F; ``post`` is the activation after the addition (identity for the
    pre-activation MLP block of Balduzzi et al.). ``response_names`` lists the branch
    modules whose outputs He et al. Fig. 7 measures (after BN, before ReLU/addition).
    """

    def __init__(self, branch: nn.Sequential, shortcut: nn.Module | None, post: nn.Module,
                 alpha: float = 1.0, gate: nn.Module | None = None,
                 response_names: tuple[str, ...] = (), weight_names: tuple[str, ...] = (),
                 skip: nn.Module | None = None) -> None:
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut
        self.gate = gate
        self.post = post
        self.alpha = float(alpha) if shortcut is not None else 1.0
        self.branch_out = nn.Identity()
        self.shortcut_out = nn.Identity()
        self.gate_out = nn.Identity()
        self.sum_out = nn.Identity()
        self.response_names = response_names
        self.weight_names = weight_names
        # Parameter-free path used by the lesion study (Veit et al. 2016): y_i = y_{i-1}.
        self.skip = skip if skip is not None else nn.Identity()

    @property
    def has_shortcut(self) -> bool:
        return self.shortcut is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.branch_out(self.alpha * self.branch(x))
        if self.shortcut is None:  # plain block: the only difference
            return self.post(self.sum_out(f))
        s = self.shortcut_out(self.shortcut(x))
        if self.gate is not None:
            t = self.gate_out(self.gate(s))
            return self.post(self.sum_out(t * f + (1.0 - t) * s))
        return self.post(self.sum_out(s + f))

    def lesioned(self, x: torch.Tensor) -> torch.Tensor:
        """The block deleted: its input passed on (shape-matched for downsampling blocks)."""
        return self.shortcut(x) if self.shortcut is not None else self.skip(x)


def mlp_block(width: int, layers: int, shortcut: str, alpha: float, norm: str,
              act: str) -> Block:
    """Pre-activation MLP block, x + α·W·act(BN(x)) (Balduzzi et al. 2017, §4)."""
    mods: dict[str, nn.Module] = {}
    for k in range(1, layers + 1):
        mods[f"norm{k}"] = make_norm(norm, width, 1)
        mods[f"act{k}"] = make_act(act)
        mods[f"fc{k}"] = nn.Linear(width, width)
    names = tuple(f"fc{k}" for k in range(1, layers + 1))
    gate = make_gate(width, conv=False) if shortcut == "gated" else None
    return Block(nn.Sequential(_ordered(mods)), make_shortcut(shortcut, width, width, 1, norm, False),
                 nn.Identity(), alpha, gate, response_names=names, weight_names=names)


def basic_block(in_ch: int, out_ch: int, stride: int, shortcut: str, alpha: float,
                norm: str, act: str) -> Block:
    """He et al. §4.2: conv3x3-BN-ReLU-conv3x3-BN, add, ReLU."""
    mods = {
        "conv1": nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=norm == "none"),
        "norm1": make_norm(norm, out_ch, 2),
        "act1": make_act(act),
        "conv2": nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=norm == "none"),
        "norm2": make_norm(norm, out_ch, 2),
    }
    return _conv_block(mods, in_ch, out_ch, stride, shortcut, alpha, norm, act, 2)


def bottleneck_block(in_ch: int, mid: int, stride: int, shortcut: str, alpha: float,
                     norm: str, act: str) -> Block:
    """He et al. Fig. 5 right: 1x1 reduce, 3x3, 1x1 expand (x4), for deeper nets."""
    out_ch = 4 * mid
    bias = norm == "none"
    mods = {
        "conv1": nn.Conv2d(in_ch, mid, 1, 1, 0, bias=bias), "norm1": make_norm(norm, mid, 2),
        "act1": make_act(act),
        "conv2": nn.Conv2d(mid, mid, 3, stride, 1, bias=bias), "norm2": make_norm(norm, mid, 2),
        "act2": make_act(act),
        "conv3": nn.Conv2d(mid, out_ch, 1, 1, 0, bias=bias), "norm3": make_norm(norm, out_ch, 2),
    }
    return _conv_block(mods, in_ch, out_ch, stride, shortcut, alpha, norm, act, 3)


def _conv_block(mods: dict[str, nn.Module], in_ch: int, out_ch: int, stride: int,
                shortcut: str, alpha: float, norm: str, act: str, n: int) -> Block:
    # Fig. 7 measures "after BN, before ReLU/addition"; with no BN, the conv output.
    resp = tuple((f"norm{k}" if norm == "batch" else f"conv{k}") for k in range(1, n + 1))
    gate = make_gate(out_ch, conv=True) if shortcut == "gated" else None
    return Block(nn.Sequential(_ordered(mods)), make_shortcut(shortcut, in_ch, out_ch, stride, norm, True),
                 make_act(act), alpha, gate, response_names=resp,
                 weight_names=tuple(f"conv{k}" for k in range(1, n + 1)),
                 skip=PadShortcut(in_ch, out_ch, stride))


def _ordered(mods: dict[str, nn.Module]):
    from collections import OrderedDict
    return OrderedDict(mods)
