"""Plain and residual nets built from one ``ExperimentSpec``.

Two families:
- ``mlp``: input projection, ``depth`` hidden layers in pre-activation blocks
  x + α·W·act(BN(x)) (Balduzzi et al. 2017), then BN-act-linear head.
- ``cnn``: He et al. 2016 §4.2 CIFAR nets, 6n+2 layers (basic) or 9n+2 (bottleneck): a
  3x3 stem, three stages of width w/2w/4w on maps that halve twice, global average pool,
  linear head.

``init_weights`` draws the weights every variant shares from one generator seeded by the
spec and the shortcut-only weights (projections, gates) from another, so the same seed gives
the same initial weights whatever the shortcut.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn

from resnet_viz.nets.blocks import Block, basic_block, bottleneck_block, make_act, make_norm, mlp_block
from resnet_viz.spec import ExperimentSpec


class Net(nn.Module):
    """stem -> blocks -> head, with the probe-facing layer lists in depth order."""

    def __init__(self, stem: nn.Sequential, blocks: list[Block], head: nn.Sequential,
                 family: str) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        self.family = family
        self.lesion: frozenset[int] = frozenset()  # blocks deleted at test time (Veit et al.)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.family == "mlp":
            x = x.flatten(1)                       # (B, D)
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            x = block.lesioned(x) if i in self.lesion else block(x)
        return self.head(x)                        # (B, n_classes)

    def weight_layers(self) -> list[tuple[str, nn.Module]]:
        """Every main-path weight layer (stem, branches, head) in forward order.

        Shortcut projections and gates are left out so plain and residual nets list the
        same layers and their gradient-norm profiles line up index by index.
        """
        out = [(f"stem.{n}", m) for n, m in self.stem.named_children() if _has_weight(m)]
        for i, block in enumerate(self.blocks):
            out += [(f"blocks.{i}.branch.{n}", getattr(block.branch, n)) for n in block.weight_names]
        out += [(f"head.{n}", m) for n, m in self.head.named_children() if _has_weight(m)]
        return out

    def response_layers(self) -> list[tuple[str, nn.Module]]:
        """Modules whose outputs He et al. Fig. 7 measures, in forward order."""
        out = [(f"stem.{n}", getattr(self.stem, n)) for n in getattr(self, "stem_response", ())]
        for i, block in enumerate(self.blocks):
            out += [(f"blocks.{i}.branch.{n}", getattr(block.branch, n)) for n in block.response_names]
        return out


def _has_weight(m: nn.Module) -> bool:
    return isinstance(m, (nn.Linear, nn.Conv2d))


def block_plan(spec: ExperimentSpec) -> list[tuple[int, int, int]]:
    """(in_channels, out_channels, stride) of each CNN block."""
    per = 9 if spec.block == "bottleneck" else 6
    n = (spec.depth - 2) // per
    expand = 4 if spec.block == "bottleneck" else 1
    plan, ch = [], spec.width
    for stage, mult in enumerate((1, 2, 4)):
        for j in range(n):
            stride = 2 if stage > 0 and j == 0 else 1
            plan.append((ch, spec.width * mult * expand, stride))
            ch = spec.width * mult * expand
    return plan


def _shortcut_kind(spec: ExperimentSpec, i: int) -> str:
    return spec.shortcut if spec.block_has_shortcut(i) else "none"


def build_mlp(spec: ExperimentSpec, in_dim: int, n_classes: int) -> Net:
    w = spec.width
    stem = nn.Sequential(OrderedDict(fc=nn.Linear(in_dim, w)))
    blocks = [mlp_block(w, spec.mlp_block_layers, _shortcut_kind(spec, i), spec.residual_scale,
                        spec.norm, spec.activation) for i in range(spec.n_blocks)]
    head = nn.Sequential(OrderedDict(norm=make_norm(spec.norm, w, 1), act=make_act(spec.activation),
                                     fc=nn.Linear(w, n_classes)))
    net = Net(stem, blocks, head, "mlp")
    net.stem_response = ("fc",)
    return net


def build_cnn(spec: ExperimentSpec, in_ch: int, n_classes: int) -> Net:
    w = spec.width
    stem = nn.Sequential(OrderedDict(conv=nn.Conv2d(in_ch, w, 3, 1, 1, bias=spec.norm == "none"),
                                     norm=make_norm(spec.norm, w, 2), act=make_act(spec.activation)))
    blocks = []
    for i, (cin, cout, stride) in enumerate(block_plan(spec)):
        kind = _shortcut_kind(spec, i)
        if spec.block == "bottleneck":
            blocks.append(bottleneck_block(cin, cout // 4, stride, kind, spec.residual_scale,
                                           spec.norm, spec.activation))
        else:
            blocks.append(basic_block(cin, cout, stride, kind, spec.residual_scale,
                                      spec.norm, spec.activation))
    head = nn.Sequential(OrderedDict(pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(),
                                     fc=nn.Linear(block_plan(spec)[-1][1], n_classes)))
    net = Net(stem, blocks, head, "cnn")
    net.stem_response = ("norm" if spec.norm == "batch" else "conv",)
    return net


def build_model(spec: ExperimentSpec, input_shape: tuple[int, ...] | None = None,
                n_classes: int | None = None) -> Net:
    """The net a spec describes, initialised from ``spec.seed``; CPU, train mode."""
    shape, classes = spec.data_shape()
    input_shape = input_shape or shape
    n_classes = n_classes or classes
    if spec.model == "cnn":
        net = build_cnn(spec, input_shape[0], n_classes)
    else:
        in_dim = 1
        for s in input_shape:
            in_dim *= s
        net = build_mlp(spec, in_dim, n_classes)
    init_weights(net, spec)
    return net


def _is_extra(name: str) -> bool:
    return ".shortcut" in name or ".gate" in name


@torch.no_grad()
def init_weights(net: Net, spec: ExperimentSpec) -> None:
    """He (Kaiming-normal, fan-in) or Xavier init; BN γ=1, β=0; Highway gate bias negative.

    ``zero_last_bn`` zeroes the last BN γ of each CNN branch (the last linear weight in an
    MLP branch or with no BN), so every residual block starts as the identity (Goyal et al. 2017; the
    ``zero_init_residual`` of torchvision). On a plain net this blocks the signal: a
    deliberate lesson, not a bug.
    """
    core = torch.Generator().manual_seed(spec.seed)
    extra = torch.Generator().manual_seed(spec.seed + 7919)
    for name, m in net.named_modules():
        gen = extra if _is_extra(name) else core
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if spec.init == "xavier":
                nn.init.xavier_normal_(m.weight, generator=gen)
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=gen)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.weight.fill_(1.0)
            m.bias.zero_()
    for block in net.blocks:
        if block.gate is not None:
            lin = block.gate[0]
            nn.init.xavier_normal_(lin.weight, generator=extra)
            lin.bias.fill_(spec.gate_bias)
        if spec.init == "zero_last_bn":
            # Post-activation CNN blocks: γ of the last BN (its gradient stays alive). In the
            # pre-activation MLP block BN feeds the ReLU, whose gradient at 0 is 0, so the
            # last linear weight is zeroed instead.
            last = [m for m in block.branch if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
            if net.family == "mlp" or not last:
                last = [m for m in block.branch if _has_weight(m)]
            last[-1].weight.zero_()


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
