"""Models: every shape/shortcut/depth trains a step; the shortcut is the only difference."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from resnet_viz.nets.blocks import PadShortcut
from resnet_viz.nets.models import build_model, count_params
from resnet_viz.spec import ExperimentSpec

SHORTCUTS = ("none", "identity", "projection", "gated")

MLP_CASES = [dict(model="mlp", dataset=d, depth=dep, width=8, mlp_block_layers=L, norm=n, activation=a)
             for d, dep, L, n, a in [("moons", 3, 1, "batch", "relu"), ("digits", 4, 2, "none", "tanh"),
                                     ("grid1d", 6, 1, "batch", "gelu"), ("spirals", 2, 2, "batch", "leaky_relu")]]
CNN_CASES = [dict(model="cnn", dataset="digits", depth=dep, width=4, block=b, norm=n)
             for dep, b, n in [(8, "basic", "batch"), (14, "basic", "none"), (11, "bottleneck", "batch")]]


def _batch(spec, n=6):
    from resnet_viz.spec import DATASET_SHAPES
    shape, classes = DATASET_SHAPES[spec.dataset]
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g)


@pytest.mark.parametrize("case, shortcut, init", list(itertools.product(
    MLP_CASES + CNN_CASES, SHORTCUTS, ("he", "xavier", "zero_last_bn"))))
def test_every_combination_trains_a_step(case, shortcut, init):
    spec = ExperimentSpec(**case, shortcut=shortcut, init=init, residual_scale=0.5)
    model = build_model(spec)
    x, y = _batch(spec)
    loss = F.cross_entropy(model(x), y)
    assert torch.isfinite(loss)
    loss.backward()
    dead_ok = init == "zero_last_bn" and shortcut == "none"  # zero-γ plain nets block signal by design
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if not dead_ok and shortcut == "identity" and init == "he":
            assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("case", MLP_CASES[:2] + CNN_CASES)
def test_same_seed_same_shared_weights_whatever_the_shortcut(case):
    states = {k: build_model(ExperimentSpec(**case, shortcut=k, seed=3)).state_dict() for k in SHORTCUTS}
    plain = states["none"]
    for kind, state in states.items():
        for key, val in plain.items():
            assert torch.equal(val, state[key]), (kind, key)
    # Option A adds no parameters: plain and identity nets are parameter-identical.
    assert set(states["identity"]) == set(plain)
    other = build_model(ExperimentSpec(**case, shortcut="none", seed=4)).state_dict()
    assert any(not torch.equal(plain[k], other[k]) for k in plain if plain[k].is_floating_point())


def test_paper_depths_and_layer_counts():
    for depth in (8, 20, 56, 110):
        model = build_model(ExperimentSpec(model="cnn", depth=depth, width=16, shortcut="none"))
        assert len(model.weight_layers()) == depth          # 6n+2 weighted layers, as He et al. count
        assert len(model.response_layers()) == depth - 1    # every 3x3 conv (stem + 6n)
    model = build_model(ExperimentSpec(model="mlp", depth=100, width=16))
    assert len(model.blocks) == 100 and len(model.weight_layers()) == 102


def test_resnet20_parameter_count_matches_paper():
    # He et al. Table 6: ResNet-20 has 0.27M parameters.
    n = count_params(build_model(ExperimentSpec(model="cnn", depth=20, width=16, dataset="cifar10")))
    assert 0.26e6 < n < 0.28e6


def test_option_a_pads_and_slices():
    pad = PadShortcut(2, 4, 2)
    x = torch.arange(2 * 2 * 4 * 4, dtype=torch.float32).reshape(2, 2, 4, 4)
    y = pad(x)
    assert y.shape == (2, 4, 2, 2)
    assert torch.equal(y[:, 1:3], x[:, :, ::2, ::2])
    assert y[:, 0].abs().sum() == 0 and y[:, 3].abs().sum() == 0


def test_zero_init_residual_blocks_are_identity():
    for case in (MLP_CASES[0], CNN_CASES[0]):
        spec = ExperimentSpec(**case, init="zero_last_bn", shortcut="identity")
        model = build_model(spec).eval()
        x, _ = _batch(spec)
        h = model.stem(x.flatten(1) if spec.model == "mlp" else x)
        block = model.blocks[0]
        expected = block.post(h)  # F(x) = 0, so y = post(x)
        assert torch.allclose(block(h), expected, atol=1e-6)


def test_mask_removes_exactly_those_shortcuts():
    spec = ExperimentSpec(depth=4, width=8, dataset="moons", shortcut_mask="0110")
    model = build_model(spec)
    assert [b.has_shortcut for b in model.blocks] == [False, True, True, False]


def test_taps_and_activations_are_unique_modules():
    model = build_model(ExperimentSpec(model="cnn", depth=8, width=4, shortcut="gated"))
    seen = set()
    for m in model.modules():
        if isinstance(m, (torch.nn.ReLU, torch.nn.Identity)):
            assert id(m) not in seen
            seen.add(id(m))
        if isinstance(m, torch.nn.ReLU):
            assert not m.inplace
    x = torch.randn(2, 1, 8, 8)
    calls = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, name=n: calls.__setitem__(name, calls.get(name, 0) + 1))
             for n, m in model.named_modules() if n]
    model(x)
    for h in hooks:
        h.remove()
    assert max(calls.values()) == 1  # every module runs once per forward: hooks and captum are exact


def test_gate_bias_initialised_negative():
    model = build_model(ExperimentSpec(depth=2, width=8, dataset="moons", shortcut="gated", gate_bias=-2.0))
    for block in model.blocks:
        assert torch.all(block.gate[0].bias == -2.0)


def test_lesion_routes_around_block():
    spec = ExperimentSpec(depth=3, width=8, dataset="moons", shortcut="identity")
    model = build_model(spec).eval()
    x = torch.randn(5, 2)
    model.lesion = frozenset({1})
    h = model.stem(x)
    h = model.blocks[2](model.blocks[0](h))
    assert torch.allclose(model(x), model.head(h))
