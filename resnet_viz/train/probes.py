"""Probes recorded while a net trains, armed only on logged steps so they cost little.

- Gradient norm ‖∂L/∂W‖ of every main-path weight layer in depth order: vanishing or
  exploding gradients in plain nets vs residual ones (He et al. 2016 §1; Glorot & Bengio 2010).
- Response std, He et al. 2016 Fig. 7: the std of "the outputs of each 3×3 layer, after BN
  and before other nonlinearity (ReLU/addition)". Measured on the training batch in train
  mode, i.e. with batch statistics, so after BN it is close to the BN scale |γ| (shared/
  science.md); for the MLP it is each hidden linear layer's output.
- ‖F(x)‖ / ‖x‖ per block: how far each block moves its input; small values mean the
  block is near the identity, as the residual reformulation H(x) = F(x) + x intends.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from resnet_viz.nets.models import Net


class ProbeSet:
    """Forward hooks for one training step; ``arm()`` before the forward, ``collect()`` after
    the backward. Between logged steps no hook is installed, so the step costs nothing extra.
    """

    def __init__(self, model: Net) -> None:
        self.model = model
        self.layer_names = [n for n, _ in model.weight_layers()]
        self.response_names = [n for n, _ in model.response_layers()]
        self._weights = [m.weight for _, m in model.weight_layers()]
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._resp: list[torch.Tensor | None] = []
        self._in_norm: list[torch.Tensor | None] = []
        self._f_norm: list[torch.Tensor | None] = []

    def arm(self) -> None:
        """Install hooks for the next forward pass."""
        self.disarm()
        n_blocks = len(self.model.blocks)
        self._resp = [None] * len(self.response_names)
        self._in_norm, self._f_norm = [None] * n_blocks, [None] * n_blocks
        for k, (_, mod) in enumerate(self.model.response_layers()):
            self._handles.append(mod.register_forward_hook(self._response_hook(k)))
        for i, block in enumerate(self.model.blocks):
            self._handles.append(block.register_forward_pre_hook(self._input_hook(i)))
            self._handles.append(block.branch_out.register_forward_hook(self._branch_hook(i)))

    def disarm(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _response_hook(self, k: int):
        def hook(_mod, _inp, out):
            self._resp[k] = out.detach().float().std()
        return hook

    def _input_hook(self, i: int):
        def hook(_mod, args):
            self._in_norm[i] = args[0].detach().float().norm()
        return hook

    def _branch_hook(self, i: int):
        def hook(_mod, _inp, out):
            self._f_norm[i] = out.detach().float().norm()
        return hook

    def collect(self) -> dict[str, list[float]]:
        """Read what the hooks saw and the fresh gradients; disarm. One device sync."""
        self.disarm()
        zero = torch.zeros((), device=self._weights[0].device)
        grads = [w.grad.detach().float().norm() if w.grad is not None else zero for w in self._weights]
        resp = [r if r is not None else zero for r in self._resp]
        ratio = [f / x.clamp_min(1e-12) if f is not None and x is not None else zero
                 for f, x in zip(self._f_norm, self._in_norm)]
        flat = torch.stack(grads + resp + ratio).cpu().tolist()
        a, b = len(grads), len(grads) + len(resp)
        return {"grad_norms": flat[:a], "response_std": flat[a:b], "branch_ratio": flat[b:]}


def count_hooks(model: nn.Module) -> int:
    """Hooks still attached anywhere in the model (should be 0 between logged steps)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())
