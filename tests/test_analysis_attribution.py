"""captum attributions checked against direct torch.autograd computations."""
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn

from resnet_viz.analysis import attribution as A
from resnet_viz.nets.blocks import mlp_block
from resnet_viz.nets.models import Net, build_model
from resnet_viz.spec import ExperimentSpec

SPECS = {
    "mlp": ExperimentSpec(model="mlp", depth=3, width=8),
    "cnn": ExperimentSpec(model="cnn", depth=8, width=4),
    "cnn_plain": ExperimentSpec(model="cnn", depth=8, width=4, shortcut="none"),
    "cnn_gated": ExperimentSpec(model="cnn", depth=8, width=4, shortcut="gated"),
}


def _trained_bn(net: nn.Module, x: torch.Tensor) -> nn.Module:
    """Give BatchNorm non-trivial running stats so eval mode differs from train mode."""
    with torch.no_grad():
        net.train()
        for _ in range(3):
            net(x + torch.randn_like(x))
    return net


def _two_block_net(shortcut: str = "identity") -> Net:
    """stem -> 2 pre-activation MLP blocks -> head, built by hand (no spec)."""
    torch.manual_seed(1)
    stem = nn.Sequential(OrderedDict(fc=nn.Linear(5, 6)))
    blocks = [mlp_block(6, 1, shortcut, 1.0, "batch", "tanh") for _ in range(2)]
    head = nn.Sequential(OrderedDict(act=nn.Tanh(), fc=nn.Linear(6, 3)))
    return _trained_bn(Net(stem, blocks, head, "mlp"), torch.randn(16, 5))


def _direct_grad_x_act(net: Net, x: torch.Tensor, target: int) -> list[float]:
    """Σ ∂y_c/∂F · F at each branch_out, by hand with forward hooks and autograd.grad."""
    net = net.eval()
    acts: list[torch.Tensor] = []
    handles = [b.branch_out.register_forward_hook(lambda m, i, o: acts.append(o)) for b in net.blocks]
    try:
        y = net(x)[:, target].sum()
        grads = torch.autograd.grad(y, acts)
    finally:
        for h in handles:
            h.remove()
    return [float((g * a).detach().flatten(1).sum(1).mean()) for g, a in zip(grads, acts)]


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_saliency_equals_abs_autograd_gradient(name):
    net = _trained_bn(build_model(SPECS[name]), torch.randn(8, 1, 8, 8))
    x, target = torch.randn(3, 1, 8, 8), torch.tensor([0, 4, 9])
    sal = A.saliency(net, x, target)
    ref_net = A.eval_copy(net)
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(ref_net(xr).gather(1, target[:, None]).sum(), xr)
    assert sal.shape == x.shape
    torch.testing.assert_close(sal, g.abs())


def test_integrated_gradients_completeness_on_a_smooth_net():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    x, base = torch.randn(2, 4), torch.randn(1, 4) * 0.1
    attr, delta = A.integrated_gradients(net, x, [1, 2], n_steps=200, baseline=base)
    with torch.no_grad():
        gap = net(x)[[0, 1], [1, 2]] - net(base.expand_as(x))[[0, 1], [1, 2]]
    torch.testing.assert_close(attr.sum(1), gap, atol=1e-4, rtol=1e-4)
    assert delta.shape == (2,) and delta.abs().max() < 1e-4


def test_integrated_gradients_steps_clipped_and_progress_reported():
    assert A.clip_steps(1) == 4 and A.clip_steps(10**6) == 200 and A.clip_steps(32) == 32
    net = build_model(SPECS["cnn"])
    seen: list[float] = []
    attr, delta = A.integrated_gradients(net, torch.randn(2, 1, 8, 8), 3, n_steps=1, progress=seen.append)
    assert attr.shape == (2, 1, 8, 8) and torch.isfinite(attr).all()
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 2


@pytest.mark.parametrize("shortcut", ["identity", "none"])
def test_block_grad_x_act_matches_autograd_at_branch_out(shortcut):
    net = _two_block_net(shortcut)
    x = torch.randn(4, 5)
    got = A.block_attribution(net, x, 2)
    assert got == pytest.approx(_direct_grad_x_act(net, x, 2), rel=1e-5, abs=1e-6)


def test_block_conductance_is_complete_through_a_plain_block():
    # In a plain net every block output is a cut of the graph, so each block's conductance
    # sums to y(x) − y(baseline) (Dhamdhere et al. 2018, completeness).
    net = _two_block_net("none")
    x = torch.randn(3, 5)
    got = A.block_attribution(net, x, 1, method="conductance", n_steps=200)
    with torch.no_grad():
        gap = float((net.eval()(x)[:, 1] - net(torch.zeros_like(x))[:, 1]).mean())
    assert got == pytest.approx([gap, gap], rel=1e-3, abs=1e-4)


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("method", A.BLOCK_METHODS)
def test_block_attribution_per_block_for_every_family(name, method):
    net = build_model(SPECS[name])
    vals = A.block_attribution(net, torch.randn(2, 1, 8, 8), 5, method=method, n_steps=4)
    assert len(vals) == len(net.blocks) and all(isinstance(v, float) for v in vals)
    assert all(v == v and abs(v) < float("inf") for v in vals)


def test_lesioned_blocks_get_zero():
    net = build_model(SPECS["cnn"])
    net.lesion = frozenset({1})
    vals = A.block_attribution(net, torch.randn(2, 1, 8, 8), 0)
    assert vals[1] == 0.0 and vals[0] != 0.0
    net.lesion = frozenset(range(len(net.blocks)))
    assert A.block_attribution(net, torch.randn(1, 1, 8, 8), 0) == [0.0] * len(net.blocks)


def _hook_counts(net: nn.Module) -> int:
    return sum(len(v) for m in net.modules() for k, v in vars(m).items()
               if "hooks" in k and isinstance(v, dict))


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_model_and_inputs_left_exactly_as_they_were(name):
    net = _trained_bn(build_model(SPECS[name]), torch.randn(8, 1, 8, 8))
    net.blocks[0].eval()                     # a mixed-mode model must come back mixed
    calls: list[int] = []
    net.blocks[0].branch_out.register_forward_hook(lambda m, i, o: calls.append(1))
    next(net.parameters()).grad = torch.ones_like(next(net.parameters()))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]
    hooks = _hook_counts(net)
    x = torch.randn(2, 1, 8, 8)
    x0 = x.clone()
    A.saliency(net, x, 1)
    A.integrated_gradients(net, x, 1, n_steps=4)
    for method in A.BLOCK_METHODS:
        A.block_attribution(net, x, 1, method=method, n_steps=4)
    assert calls == [] and _hook_counts(net) == hooks
    assert [m.training for m in net.modules()] == modes
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    params = list(net.parameters())
    assert torch.equal(params[0].grad, torch.ones_like(params[0]))
    assert all(p.grad is None and p.requires_grad for p in params[1:])
    assert torch.equal(x, x0) and not x.requires_grad and x.grad is None


def test_bad_arguments_raise_sentences():
    net = build_model(SPECS["mlp"])
    with pytest.raises(ValueError, match="method must be one of"):
        A.block_attribution(net, torch.randn(1, 1, 8, 8), 0, method="magic")
    with pytest.raises(ValueError, match="one target per example"):
        A.saliency(net, torch.randn(3, 1, 8, 8), [1, 2])
