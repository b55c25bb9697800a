"""Run-time estimates: the cost model's shape and the calibration from measured speeds."""
from __future__ import annotations

import pytest

from resnet_viz.estimate import (BIG_RUN_S, SpeedCalibrator, describe, estimate_seconds, forward_macs,
                                 pair_seconds, step_seconds)
from resnet_viz.spec import ExperimentSpec


def test_mlp_macs_are_its_weights():
    spec = ExperimentSpec(dataset="moons", depth=3, width=10)
    assert forward_macs(spec) == 2 * 10 + 3 * 10 * 10 + 10 * 2


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
