"""Shattered-gradients figures: expected traces, colours, titles and axis labels."""
from __future__ import annotations

import pytest

from resnet_viz.figures.shatter import (autocorrelation_figure, correlation_heatmap,
                                        curve_colour, curve_label, gradient_figure,
                                        lag1_depth_figure)
from resnet_viz.figures.style import PLAIN, REFERENCE, RESIDUAL, SCALED
from resnet_viz.analysis.shatter import lag1_vs_depth, noise_references, shatter_report
from resnet_viz.spec import ExperimentSpec


def report(kind: str, depth: int, beta: float = 1.0) -> dict:
    spec = ExperimentSpec(model="mlp", dataset="grid1d", width=16, depth=depth, shortcut=kind,
                          residual_scale=beta)
    return shatter_report(spec, n=64)


@pytest.fixture(scope="module")
def reports() -> list[dict]:
    return [report("none", 1), report("none", 12), report("identity", 12),
            report("identity", 12, 0.1)]


def names(fig) -> list[str]:
    return [t.name for t in fig.data]


def test_colours_and_labels():
    assert curve_colour("none") == PLAIN and curve_colour("identity") == RESIDUAL
    assert curve_colour("identity", 0.1) == SCALED
    assert curve_label("identity", 0.1, 50) == "ResNet β=0.1, depth 50"
    assert curve_label("none", 1.0, 24) == "plain, depth 24"


def test_gradient_figure(reports):
    fig = gradient_figure(reports, references=noise_references(64))
    assert names(fig) == ["white noise (reference)", "brown noise (reference)", "plain, depth 1",
                          "plain, depth 12", "ResNet, depth 12", "ResNet β=0.1, depth 12"]
    assert [t.line.color for t in fig.data] == [REFERENCE, REFERENCE, PLAIN, PLAIN, RESIDUAL, SCALED]
    assert fig.data[2].line.dash != fig.data[3].line.dash      # two plain curves told apart
    assert all(len(t.x) == len(t.y) == 64 for t in fig.data)
    assert abs(sum(fig.data[3].y)) < 1e-6                        # standardised
    assert "Gradient" in fig.layout.title.text
    assert fig.layout.xaxis.title.text.startswith("input x")
    assert "standardised" in fig.layout.yaxis.title.text


def test_gradient_figure_raw_without_references(reports):
    fig = gradient_figure(reports[:1], references=None, normalise=False)
    assert names(fig) == ["plain, depth 1"]
    assert list(fig.data[0].y) == pytest.approx(reports[0]["gradients"])
    assert "logit" in fig.layout.yaxis.title.text
    custom = gradient_figure([{"gradients": [0.0, 1.0, 0.0], "label": "mine", "kind": "identity"}],
                             x=[-1, 0, 1], references=None)
    assert names(custom) == ["mine"] and custom.data[0].line.color == RESIDUAL
    with pytest.raises(ValueError):
        gradient_figure([])


def test_correlation_heatmap(reports):
    rep = reports[2]
    fig = correlation_heatmap(rep["corr_matrix"], rep["corr_x"], label="ResNet, depth 12")
    (heat,) = fig.data
    assert heat.type == "heatmap" and heat.zmin == -1 and heat.zmax == 1
    assert len(heat.z) == len(heat.x) == 64
    assert "Correlation" in fig.layout.title.text and "ResNet" in fig.layout.title.text
    assert "x_i" in fig.layout.xaxis.title.text and "x_j" in fig.layout.yaxis.title.text


def test_autocorrelation_figure(reports):
    fig = autocorrelation_figure(reports, references=noise_references(64))
    assert names(fig)[:2] == ["white noise (reference)", "brown noise (reference)"]
    assert len(fig.data) == 6 and all(len(t.x) == 33 for t in fig.data)   # lags 0..n//2
    assert all(t.y[0] == pytest.approx(1.0) for t in fig.data)
    assert "Autocorrelation" in fig.layout.title.text
    assert "lag" in fig.layout.xaxis.title.text and "grid steps" in fig.layout.xaxis.title.text
    short = autocorrelation_figure(reports[:1], references=None, max_lag=5)
    assert len(short.data) == 1 and len(short.data[0].y) == 6


def test_lag1_depth_figure():
    res = lag1_vs_depth([1, 3], betas=(1.0, 0.1), seeds=(0, 1), width=16, n=64)
    fig = lag1_depth_figure(res)
    measured = [t for t in fig.data if t.mode == "lines+markers"]
    theory = [t for t in fig.data if t.line.dash == "dash"]
    assert [t.name for t in measured] == ["plain", "ResNet", "ResNet β=0.1"]
    assert [t.line.color for t in measured] == [PLAIN, RESIDUAL, SCALED]
    assert all(t.error_y.array is not None for t in measured)
    assert len(theory) == 3 and "2^-L" in theory[0].name and "√L" in theory[1].name
    assert "white-noise" in fig.data[0].name
    assert "depth" in fig.layout.xaxis.title.text and "lag-1" in fig.layout.yaxis.title.text
    assert fig.layout.yaxis.type != "log"
    log = lag1_depth_figure(res, log_y=True, theory=False)
    assert log.layout.yaxis.type == "log" and len(log.data) == 4
