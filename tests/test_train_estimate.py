"""Run-time estimates: the cost model's shape and the calibration from measured speeds."""
from __future__ import annotations

import itertools
import math
import subprocess
import sys
import threading

import pytest

from resnet_viz.nets.models import block_plan
from resnet_viz.spec import ExperimentSpec
from resnet_viz.train.estimate import (BIG_RUN_S, SpeedCalibrator, architecture_macs, describe, estimate_seconds,
                                       forward_macs, pair_seconds, step_seconds)


def test_mlp_macs_are_its_weights():
    spec = ExperimentSpec(dataset="moons", depth=3, width=10)
    assert forward_macs(spec) == 2 * 10 + 3 * 10 * 10 + 10 * 2


def _conv(cin: int, cout: int, k: int, h: int, w: int) -> int:
    return cin * cout * k * k * h * w


def hand_counted_macs(spec: ExperimentSpec) -> int:
    """The counter ``forward_macs`` had before torch's ``FlopCounterMode`` replaced it: the
    weight layers' multiply-accumulates, written out from the architecture by hand."""
    shape, classes = spec.data_shape()
    w = spec.width
    if spec.model != "cnn":
        gates = sum(spec.shortcut == "gated" and spec.block_has_shortcut(i) for i in range(spec.n_blocks))
        return math.prod(shape) * w + spec.depth * w * w + gates * w * w + w * classes
    cin, h, wd = shape
    total = _conv(cin, w, 3, h, wd)
    for i, (ci, co, stride) in enumerate(block_plan(spec)):
        ho, wo = math.ceil(h / stride), math.ceil(wd / stride)
        if spec.block == "bottleneck":
            mid = co // 4
            total += _conv(ci, mid, 1, h, wd) + _conv(mid, mid, 3, ho, wo) + _conv(mid, co, 1, ho, wo)
        else:
            total += _conv(ci, co, 3, ho, wo) + _conv(co, co, 3, ho, wo)
        if spec.block_has_shortcut(i) and spec.shortcut == "projection" and (ci != co or stride != 1):
            total += _conv(ci, co, 1, ho, wo)
        if spec.block_has_shortcut(i) and spec.shortcut == "gated":
            total += _conv(co, co, 1, ho, wo)
        h, wd = ho, wo
    return total + block_plan(spec)[-1][1] * classes


def specs_to_count():
    """MLPs and CNNs (basic, bottleneck; with and without BN) with every shortcut kind, on
    every block or every other one."""
    nets = [("mlp", "moons", 3, "basic", 1), ("mlp", "digits", 8, "basic", 2), ("mlp", "grid1d", 2, "basic", 1),
            ("cnn", "digits", 14, "basic", 1), ("cnn", "cifar10", 8, "basic", 1),
            ("cnn", "digits", 20, "bottleneck", 1), ("cnn", "mnist", 11, "bottleneck", 1)]
    grid = itertools.product(nets, ["none", "identity", "projection", "gated"], [False, True])
    for (model, dataset, depth, block, layers), shortcut, every_other in grid:
        spec = ExperimentSpec(model=model, dataset=dataset, depth=depth, width=8, block=block, shortcut=shortcut,
                              mlp_block_layers=layers, norm="none" if every_other else "batch")
        if every_other:
            spec = spec.replace(shortcut_mask="".join("10"[i % 2] for i in range(spec.n_blocks)))
        yield spec


def test_flop_counter_gives_the_hand_counted_macs_of_mlps_and_cnns():
    """``FlopCounterMode`` counts 2 FLOPs per multiply-accumulate of linear and conv layers
    and nothing for BN, biases, activations and the pad shortcut: what the old counter wrote
    out by hand, to the unit, for every kind of net."""
    specs = list(specs_to_count())
    assert {s.model for s in specs} == {"mlp", "cnn"} and {s.block for s in specs} == {"basic", "bottleneck"}
    assert [forward_macs(s) for s in specs] == [hand_counted_macs(s) for s in specs]


def test_macs_are_cached_per_architecture_not_per_run():
    spec = ExperimentSpec(model="cnn", depth=14, width=8)
    forward_macs(spec)
    counted = architecture_macs.cache_info().misses
    for seed in range(5):   # another seed, learning rate or step count: the same net
        forward_macs(spec.replace(seed=seed, lr=0.01 * (seed + 1), steps=100 + seed))
    assert architecture_macs.cache_info().misses == counted


def test_counting_beside_a_training_thread_counts_only_its_own_net():
    """The counter hooks every module of the process while it counts; a net training in
    another thread at that moment adds nothing to the count (nor breaks that thread)."""
    from resnet_viz.data.datasets import load_dataset
    from resnet_viz.train.trainer import Trainer

    count = architecture_macs.__wrapped__   # uncached
    spec = ExperimentSpec(model="cnn", depth=20, width=8, dataset="digits")
    trainer = Trainer(ExperimentSpec(dataset="moons", depth=4, width=8, steps=400), None)
    stop, errors = threading.Event(), []

    def train() -> None:
        try:
            while not stop.is_set() and trainer.step < 400:
                trainer.train_steps(5)
        except Exception as err:  # pragma: no cover - the failure this test looks for
            errors.append(err)

    worker = threading.Thread(target=train)
    worker.start()
    try:
        counts = [count(spec) for _ in range(3)]
    finally:
        stop.set()
        worker.join(60)
    assert counts == [hand_counted_macs(spec)] * 3 and not errors


def test_importing_the_cost_model_loads_no_torch():
    code = ("import sys; import resnet_viz.train.estimate as e; "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)[:5]; "
            "from resnet_viz.spec import ExperimentSpec; e.forward_macs(ExperimentSpec()); "
            "assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_cost_grows_with_depth_width_steps_and_cnn_costs_more():
    small = ExperimentSpec(depth=8, width=32, steps=100)
    assert step_seconds(small.replace(depth=56)) > step_seconds(small)
    assert step_seconds(small.replace(width=256)) > step_seconds(small)
    assert estimate_seconds(small.replace(steps=200)) == pytest.approx(2 * estimate_seconds(small))
    assert step_seconds(ExperimentSpec(model="cnn", depth=20, width=16)) > 5 * step_seconds(ExperimentSpec())


def test_presets_are_quick_and_big_runs_are_flagged():
    assert estimate_seconds(ExperimentSpec(dataset="moons", depth=4, width=8, steps=30)) < 1
    assert estimate_seconds(ExperimentSpec()) < BIG_RUN_S                      # the default pair trains live
    assert estimate_seconds(ExperimentSpec(model="cnn", depth=110, width=64, steps=5000)) > BIG_RUN_S


def test_pair_on_two_workers_takes_the_longer_run():
    a, b = ExperimentSpec(steps=100), ExperimentSpec(steps=300)
    assert pair_seconds([a, b], 2) == pytest.approx(estimate_seconds(b))
    assert pair_seconds([a, b], 1) == pytest.approx(estimate_seconds(a) + estimate_seconds(b))


def test_calibration_uses_the_median_ratio_once_per_run():
    cal = SpeedCalibrator()
    spec = ExperimentSpec(steps=100)
    assert cal.factor == 1.0
    cal.observe(spec, 0.5 / step_seconds(spec))        # measured: twice the model's time
    cal.observe(spec, 10.0)                            # the same run again: ignored
    cal.observe(spec.replace(seed=1), None)            # no speed: ignored
    assert cal.factor == pytest.approx(2.0)
    assert cal.estimate(spec) == pytest.approx(2 * estimate_seconds(spec))


def test_describe():
    assert describe(2) == "a few seconds" and describe(40) == "about 40 s"
    assert describe(180) == "about 3 min" and describe(7200) == "about 2.0 h"


def test_counting_matches_flop_counter_mode_and_leaves_other_threads_alone():
    """Same total as torch's FlopCounterMode, without its process-wide module hooks: a captum
    saliency in another thread used to fail while a count ran (58 of 200 calls)."""
    import threading

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from resnet_viz.analysis.attribution import saliency
    from resnet_viz.nets.models import build_model
    from resnet_viz.train import estimate

    spec = ExperimentSpec(model="cnn", depth=20, width=8, dataset="digits")
    net = build_model(spec).eval()
    with FlopCounterMode(display=False) as ref, torch.no_grad():
        net(torch.zeros(1, 1, 8, 8))
    assert estimate.architecture_macs(spec) == ref.get_total_flops() // 2

    stop, errors = threading.Event(), []

    def count() -> None:
        while not stop.is_set():
            estimate.architecture_macs.cache_clear()
            estimate.architecture_macs(spec)
    counter = threading.Thread(target=count)
    counter.start()
    try:
        x = torch.randn(2, 1, 8, 8)
        for _ in range(60):
            try:
                saliency(net, x, 1)
            except RuntimeError as err:
                errors.append(str(err))
    finally:
        stop.set()
        counter.join()
    assert errors == []
