"""Training figures: synthetic snapshots in (incl. empty, single-point, NaN, diverged), figures out."""
from __future__ import annotations

import json
import math

import plotly.graph_objects as go
import pytest

from resnet_viz.figures import style
from resnet_viz.figures import responses as fr
from resnet_viz.figures import training as ft
from resnet_viz.figures.runs import MAX_POINTS, downsample_indices, probe_index, run_labels, run_styles


def snap(shortcut: str = "identity", depth: int = 4, n: int = 5, layers: int = 6, status: str = "finished",
         mask: str = "", seed: int = 0, **over) -> dict:
    """A snapshot in the Trainer's schema with simple, known numbers."""
    steps = list(range(0, 10 * n, 10))
    s = {
        "spec": {"model": "mlp", "depth": depth, "shortcut": shortcut, "shortcut_mask": mask,
                 "residual_scale": 1.0, "seed": seed, "steps": 10 * n},
        "spec_hash": f"h{shortcut}{depth}{seed}", "step": 10 * max(0, n - 1), "total_steps": 10 * n,
        "status": status,
        "history": {"step": steps, "train_loss": [1.0 / (i + 1) for i in range(n)],
                    "train_acc": [0.5 + 0.01 * i for i in range(n)],
                    "val_loss": [1.1 / (i + 1) for i in range(n)], "val_acc": [0.5] * n},
        "probe_step": steps, "batch_loss": [1.0] * n,
        "layer_names": [f"l{k}" for k in range(layers)],
        "grad_norms": [[10.0 ** -(k % 3) * (i + 1) for k in range(layers)] for i in range(n)],
        "response_names": [f"r{k}" for k in range(layers - 1)],
        "response_std": [[1.0 + k for k in range(layers - 1)] for _ in range(n)],
        "branch_ratio": [[0.1 * (k + 1) for k in range(layers - 2)] for _ in range(n)],
        "final": {"train_loss": 0.2, "steps_per_s": 100.0, "device": "cpu", "stopped_reason": status},
    }
    s.update(over)
    return s


def empty() -> dict:
    return snap(n=0, status="running")


def weird_runs() -> list[dict]:
    nan = float("nan")
    bad = snap("none", depth=56, n=3, status="diverged")
    bad["history"]["train_loss"] = [1.0, nan, float("inf")]
    bad["grad_norms"] = [[nan, 0.0, -1.0, 1.0, 2.0, 3.0]] * 3
    bad["response_std"] = [[nan] * 5] * 3
    bad["branch_ratio"] = [[nan, 0.0, 1.0, 2.0]] * 3
    return [empty(), snap(n=1), bad, {}]


def test_loss_curves_traces_colours_and_labels():
    fig = ft.loss_curves([snap("none"), snap("identity")])
    names = [t.name for t in fig.data]
    assert names == ["plain-4 · train", "plain-4 · val", "resnet-4 (identity) · train", "resnet-4 (identity) · val"]
    assert [t.line.color for t in fig.data] == [style.PLAIN] * 2 + [style.RESIDUAL] * 2
    assert [t.line.dash for t in fig.data] == ["solid", "dash"] * 2
    assert fig.layout.xaxis.title.text == "training step"
    assert fig.layout.yaxis.title.text == "cross-entropy loss (nats)"
    assert fig.layout.title.text and fig.layout.uirevision
    again = ft.loss_curves([snap("none", n=7), snap("identity", n=7)])
    assert [t.name for t in again.data] == names and again.layout.uirevision == fig.layout.uirevision


def test_loss_curves_accuracy_in_percent_and_splits():
    fig = ft.loss_curves([snap()], metric="acc", splits=("train",))
    assert len(fig.data) == 1 and fig.data[0].y[0] == pytest.approx(50.0)
    assert fig.layout.yaxis.title.text == "accuracy (%)"
    assert ft.loss_curves([snap()], log_y=True).layout.yaxis.type == "log"
    with pytest.raises(ValueError):
        ft.loss_curves([snap()], metric="error")


def test_same_kind_runs_get_distinct_names_and_symbols():
    runs = [snap("identity", seed=0), snap("identity", seed=1), snap("identity", depth=8)]
    assert run_labels(runs) == ["resnet-4 (identity) seed 0", "resnet-4 (identity) seed 1", "resnet-8 (identity)"]
    styles = run_styles(runs)
    assert {c for _, c, _ in styles} == {style.RESIDUAL} and len({s for _, _, s in styles}) == 3
    assert run_labels([snap(), snap()]) == ["resnet-4 (identity) #1", "resnet-4 (identity) #2"]
    assert run_labels([snap(label="mine"), snap("gated", mask="0000")]) == ["mine", "plain-4"]
    assert run_labels([snap(mask="1010")]) == ["resnet-4 (identity) mask 1010"]


def test_nan_and_diverged_become_gaps_and_a_marked_line():
    runs = weird_runs()
    fig = ft.loss_curves(runs)
    plain = [t for t in fig.data if t.name == "plain-56 · train"][0]
    assert list(plain.y) == [1.0, None, None]
    assert any("diverged" in (a.text or "") for a in fig.layout.annotations)
    json.loads(fig.to_json())   # serialisable, no NaN sneaking through


@pytest.mark.parametrize("build", [
    lambda r: ft.loss_curves(r), lambda r: ft.loss_curves(r, "acc", log_y=True),
    lambda r: ft.grad_norm_by_depth(r), lambda r: ft.grad_norm_by_depth(r, at=15),
    lambda r: fr.response_std(r), lambda r: fr.response_std(r, sort=True), lambda r: fr.branch_ratio(r),
    lambda r: ft.grad_norm_heatmap(r[0]), lambda r: ft.grad_norm_heatmap(r[2]), lambda r: ft.grad_norm_heatmap({}),
    lambda r: ft.loss_curves([]), lambda r: ft.grad_norm_by_depth([]), lambda r: ft.depth_sweep([]),
])
def test_builders_never_raise_on_odd_runs(build):
    fig = build(weird_runs())
    assert isinstance(fig, go.Figure) and fig.layout.title.text
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    json.loads(fig.to_json())


def test_downsampling_bounds_points():
    assert downsample_indices(10) == list(range(10))
    idx = downsample_indices(10_001, 2000)
    assert len(idx) <= 2000 and idx[0] == 0 and idx[-1] == 10_000
    fig = ft.loss_curves([snap(n=5000)])
    assert all(len(t.x) <= MAX_POINTS for t in fig.data) and fig.data[0].x[-1] == 49_990
    heat = ft.grad_norm_heatmap(snap(n=3000, layers=40))
    assert len(heat.data[0].x) * len(heat.data[0].y) <= ft.MAX_CELLS
    assert len(ft.grad_norm_by_depth([snap(n=1, layers=3000)]).data[0].x) <= MAX_POINTS


def test_heatmap_is_log10_layers_by_steps():
    fig = ft.grad_norm_heatmap(snap(n=3, layers=4))
    h = fig.data[0]
    assert list(h.y) == [0, 1, 2, 3] and list(h.x) == [0, 10, 20]
    assert h.z[1][2] == pytest.approx(math.log10(0.1 * 3))
    assert h.customdata[2][0] == "l2"
    assert fig.layout.xaxis.title.text == "training step"
    assert "log" in h.colorbar.title.text


def test_first_last_ratio_hand_example():
    run = {"probe_step": [0, 50], "grad_norms": [[1.0, 5.0, 4.0], [8.0, 1.0, 2.0]]}
    assert ft.first_last_ratio(run) == pytest.approx(4.0)
    assert ft.first_last_ratio(run, "first") == pytest.approx(0.25)
    assert ft.first_last_ratio(run, 40) == pytest.approx(4.0)     # nearest probe step: 50
    assert ft.first_last_ratio(run, 10) == pytest.approx(0.25)
    assert math.isnan(ft.first_last_ratio({}))
    assert math.isnan(ft.first_last_ratio({"probe_step": [0], "grad_norms": [[1.0, 0.0]]}))
    with pytest.raises(ValueError):
        probe_index(run, "middle")


def test_grad_norm_by_depth_log_axis_and_ratio_in_the_legend():
    fig = ft.grad_norm_by_depth([snap("none"), snap("identity")])
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.yaxis.title.text == "‖∂L/∂W‖ (log scale)"
    assert [t.line.color for t in fig.data] == [style.PLAIN, style.RESIDUAL]
    assert fig.data[0].name == "plain-4 · first/last = 100"                  # 5 / 0.05
    assert not fig.layout.annotations                                        # nothing drawn over the lines
    assert "first/last" in fig.layout.title.text and "<sup>" in fig.layout.title.text
    assert "first" in ft.grad_norm_by_depth([snap()], at="first").layout.title.text
    bare = {"layer_names": ["a"], "probe_step": [0], "grad_norms": [[1.0]]}
    assert ft.grad_norm_by_depth([bare]).data[0].name.endswith("first/last: not yet")
    titled = ft.grad_norm_by_depth([snap()], title="Mine<br><sup>sub</sup>").layout.title.text
    assert titled == "Mine<br><sup>sub</sup>"                               # a given subtitle is kept alone


def test_legend_below_the_plot_never_meets_the_title():
    for fig in (ft.loss_curves([snap()]), ft.grad_norm_by_depth([snap()]), ft.depth_sweep([])):
        legend = fig.layout.legend
        assert legend.orientation == "h" and legend.yref == "container"
        assert legend.y == 0 and legend.yanchor == "bottom"


def test_depth_sweep_mean_std_and_diverged():
    rows = [dict(depth=20, shortcut="none", seed=s, train_loss=v) for s, v in enumerate([0.1, 0.3])]
    rows += [dict(depth=56, shortcut="none", seed=0, train_loss=2.0),
             dict(depth=56, shortcut="none", seed=1, train_loss=float("nan")),
             dict(depth=20, shortcut="identity", seed=0, train_loss=0.05),
             dict(depth=56, shortcut="identity", seed=0, train_loss=float("nan"))]
    fig = ft.depth_sweep(rows)
    plain, res = fig.data
    assert plain.name == style.label_for("none") and plain.line.color == style.PLAIN
    assert res.line.color == style.RESIDUAL
    assert list(plain.x) == [20, 56] and plain.y[0] == pytest.approx(0.2) and plain.y[1] == pytest.approx(2.0)
    assert plain.error_y.array[0] == pytest.approx(0.1) and plain.error_y.array[1] == 0
    assert "1 diverged" in plain.text[1]
    assert res.y[1] is None and any("diverged" in a.text for a in fig.layout.annotations)
    assert "Fig. 6" in fig.layout.title.text and fig.layout.xaxis.title.text.startswith("depth")


def test_progress_summary():
    s = ft.progress_summary(snap(n=5, status="running", step=10, total_steps=100))
    assert s["step"] == 10 and s["total"] == 100 and s["percent"] == pytest.approx(10.0)
    assert s["steps_per_s"] == 100.0 and s["device"] == "cpu" and not s["done"]
    assert s["eta_s"] == pytest.approx(0.9) and "10 / 100" in s["text"] and "cpu" in s["text"]
    d = ft.progress_summary(snap(status="diverged", final={"stopped_reason": "diverged: loss nan",
                                                              "device": "cuda"}))
    assert d["done"] and "diverged" in d["text"] and d["device"] == "cuda"
    e = ft.progress_summary({})
    assert e["percent"] == 0.0 and e["status"] == "waiting" and e["text"]


def test_loss_curves_say_which_curve_is_which():
    run = snap("identity")
    run["history"]["batch_loss_mean"] = [None] + [1.0] * (len(run["history"]["step"]) - 1)
    fig = ft.loss_curves([run])
    assert [t.name for t in fig.data] == ["resnet-4 (identity) · train", "resnet-4 (identity) · val",
                                          "resnet-4 (identity) · train batches"]
    assert fig.data[2].line.dash == "dot" and fig.data[2].y[0] is None
    assert fig.layout.title.text == "Loss during training"
    assert "precise-BN" in fig.layout.title.subtitle.text and "train mode" in fig.layout.title.subtitle.text
    assert len(ft.loss_curves([run], "acc").data) == 2             # no minibatch accuracy is logged
