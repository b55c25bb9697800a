"""Lesion study (Veit et al. 2016, §4): plain nets break when a block is deleted, ResNets do not.

Margins calibrated on digits, depth-20 width-32 MLP, 300 SGD steps, seeds 0-2 (1 thread):
plain mean accuracy with one block deleted 0.12-0.15 (chance 0.10, intact 0.86-0.94);
ResNet mean drop over blocks 1..19 0.004-0.010 (first block 0.07-0.13, intact ~0.97);
ResNet with 5 random blocks (not the first) deleted 0.86-0.88.
"""
import statistics

import pytest
import torch

from helpers import quick_train
from resnet_viz.analysis.lesion import evaluate_lesioned, lesion_random_k, lesion_study
from resnet_viz.nets.models import build_model
from resnet_viz.spec import ExperimentSpec

SEEDS = (0, 1, 2)
STEPS = 300
BASE = ExperimentSpec(model="mlp", dataset="digits", depth=20, width=32, lr=0.1)


@pytest.fixture(scope="module")
def twins():
    """{seed: {"none": (model, x, y), "identity": (...)}} trained once for the module."""
    return {seed: {sc: quick_train(BASE.replace(shortcut=sc, seed=seed), STEPS)
                   for sc in ("none", "identity")} for seed in SEEDS}


@pytest.fixture(scope="module")
def studies(twins):
    return {seed: {sc: lesion_study(*run) for sc, run in pair.items()} for seed, pair in twins.items()}


def test_deleting_a_plain_block_drops_to_near_chance(studies):
    per_seed = [statistics.mean(s["none"]["acc"]) for s in studies.values()]
    print("plain mean lesioned acc", per_seed)
    assert min(s["none"]["baseline_acc"] for s in studies.values()) > 0.8
    assert statistics.mean(per_seed) < 0.25
    assert max(per_seed) < 0.35


def test_deleting_a_residual_block_costs_little(studies):
    drops = [statistics.mean(s["identity"]["acc_drop"][1:]) for s in studies.values()]
    print("resnet mean drop (blocks 1..)", drops)
    assert min(s["identity"]["baseline_acc"] for s in studies.values()) > 0.9
    assert statistics.mean(drops) < 0.03
    assert max(drops) < 0.05
    plain = [statistics.mean(s["none"]["acc_drop"][1:]) for s in studies.values()]
    assert statistics.mean(plain) > 10 * statistics.mean(drops)


def test_result_shape_and_consistency(studies):
    res = studies[0]["identity"]
    n = BASE.n_blocks
    for key in ("acc", "loss", "acc_drop", "downsampling"):
        assert len(res[key]) == n
    assert res["downsampling"] == [False] * n
    assert res["acc_drop"] == pytest.approx([res["baseline_acc"] - a for a in res["acc"]])
    assert all(0.0 <= a <= 1.0 for a in res["acc"]) and res["baseline_loss"] > 0


def test_lesion_matches_a_hand_written_forward(twins):
    """Deleting block i of an identity-shortcut MLP means y_i = y_{i-1} (Veit et al. Eq. 2)."""
    model, x, y = twins[1]["identity"]
    res = lesion_study(model, x, y, batch_size=97)           # odd batch: exercises the tail
    with torch.no_grad():
        for i in (0, 7, 19):
            h = model.stem(x.flatten(1))
            for j, block in enumerate(model.blocks):
                h = h if j == i else block(h)
            acc = (model.head(h).argmax(1) == y).sum().item() / len(y)
            assert res["acc"][i] == pytest.approx(acc, abs=1e-9)


@pytest.mark.parametrize("train_mode", [False, True])
def test_model_left_exactly_as_it_was(twins, train_mode):
    model, x, y = twins[2]["identity"]
    model.train(train_mode)
    model.lesion = frozenset({3})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        res = lesion_study(model, x, y)
        lesion_random_k(model, x, y, max_k=2, trials=2)
        assert model.training is train_mode
        assert model.lesion == frozenset({3})
        assert all(p.grad is None for p in model.parameters())
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)  # BN stats too
        intact = evaluate_lesioned(model, x, y)
        assert res["baseline_acc"] == pytest.approx(intact[0])   # baseline ignores the old lesion
    finally:
        model.eval()
        model.lesion = frozenset()


def test_downsampling_blocks_are_flagged():
    spec = ExperimentSpec(model="cnn", dataset="digits", depth=8, width=4, seed=0)
    model = build_model(spec)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    res = lesion_study(model, x, y)
    assert res["downsampling"] == [False, True, True]
    assert model.training                                     # build_model returns train mode


def test_random_k_degrades_smoothly_for_resnets(twins):
    at5 = []
    for seed in SEEDS:
        model, x, y = twins[seed]["identity"]
        res = lesion_random_k(model, x, y, max_k=5, trials=3, exclude=[0], seed=seed)
        assert res["k"] == [0, 1, 2, 3, 4, 5]
        assert res["acc_mean"][0] == pytest.approx(lesion_study(model, x, y)["baseline_acc"])
        assert res["acc_std"][0] == 0.0
        at5.append(res["acc_mean"][5])
    print("resnet acc with 5 blocks deleted", at5)
    assert 0.6 < statistics.mean(at5) < 0.98


def test_random_k_is_seeded_and_validated(twins):
    model, x, y = twins[0]["none"]
    a = lesion_random_k(model, x, y, max_k=2, trials=2, seed=5)
    assert a == lesion_random_k(model, x, y, max_k=2, trials=2, seed=5)
    assert a["acc_mean"][1] < 0.5                               # plain: one deletion is fatal
    with pytest.raises(ValueError):
        lesion_random_k(model, x, y, trials=0)
    with pytest.raises(ValueError, match="one label per example"):
        lesion_study(model, x[:0], y[:0])
