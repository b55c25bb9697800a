"""Run names (``resnet_viz.labels``): the same run has the same name on every page and file."""
from __future__ import annotations

from resnet_viz.labels import finite, run_kind, run_label, run_labels


def run(shortcut: str = "identity", depth: int = 20, **spec) -> dict:
    return {"spec": {"shortcut": shortcut, "depth": depth, **spec}}


def test_names_follow_the_spec():
    assert run_label(run("none")) == "plain-20"
    assert run_label(run("identity", 56)) == "resnet-56 (identity)"
    assert run_label(run("gated", 8)) == "highway-8 (gated)"
    assert run_label(run(shortcut_mask="0" * 9)) == "plain-20"          # every shortcut off
    assert run_kind(run(shortcut_mask="0" * 9)) == "none"
    assert run_label(run(shortcut_mask="110111111")) == "resnet-20 (identity) mask 110111111"
    assert run_label(run(residual_scale=0.1)) == "resnet-20 (identity) α=0.1"
    assert run_label({"label": "mine", **run()}) == "mine"


def test_clashing_names_get_the_seed_then_a_counter():
    assert run_labels([run(seed=0), run(seed=1)]) == ["resnet-20 (identity) seed 0", "resnet-20 (identity) seed 1"]
    assert run_labels([run(seed=0), run(seed=0)]) == ["resnet-20 (identity) #1", "resnet-20 (identity) #2"]


def test_finite():
    assert finite("2.5") == 2.5 and finite(float("nan")) is None and finite(None) is None
