"""Decision grid (compute) and boundary figures: grid agrees with the model, mode restored."""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from resnet_viz.analysis.boundary import decision_grid
from resnet_viz.figures import style
from resnet_viz.figures.boundary import CLASS_COLOURS, boundary_pair, decision_boundary
from resnet_viz.figures.runs import MAX_POINTS
from resnet_viz.nets.models import build_model
from resnet_viz.spec import ExperimentSpec


def tiny():
    model = build_model(ExperimentSpec(depth=2, width=8, dataset="moons", shortcut="gated"))
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():            # non-trivial BN running statistics
        model.train()
        model(x)
    return model, x


def test_grid_matches_the_model_on_grid_points():
    model, x = tiny()
    grid = decision_grid(model, x, n=7, margin=0.5)
    assert grid["n"] == 7 and len(grid["xx"]) == 7 and len(grid["prob"]) == 7
    assert grid["xx"][0] == pytest.approx(float(x[:, 0].min()) - 0.5)
    assert grid["yy"][-1] == pytest.approx(float(x[:, 1].max()) + 0.5)
    model.eval()
    for i, j in [(0, 0), (3, 5), (6, 2)]:
        with torch.no_grad():
            p = torch.softmax(model(torch.tensor([[grid["xx"][j], grid["yy"][i]]])), 1)[0, 1]
        assert grid["prob"][i][j] == pytest.approx(float(p), abs=1e-5)


def test_grid_restores_modes_and_takes_numpy():
    model, x = tiny()
    model.train()
    model.blocks[0].eval()           # mixed modes must come back exactly
    before = [m.training for m in model.modules()]
    grid = decision_grid(model, x.numpy(), n=5)
    assert [m.training for m in model.modules()] == before
    assert all(p.grad is None for p in model.parameters())
    assert np.isfinite(np.array(grid["prob"])).all()
    json.dumps(grid)


def test_grid_rejects_non_2d_inputs():
    model, _ = tiny()
    with pytest.raises(ValueError, match="2-D"):
        decision_grid(model, torch.zeros(4, 3))
    with pytest.raises(ValueError):
        decision_grid(model, torch.full((3, 2), float("nan")))


def synthetic(n: int = 50):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2))
    y = (x[:, 0] > 0).astype(int)
    xx = np.linspace(-2, 2, 11)
    prob = 1 / (1 + np.exp(-4 * xx))[None, :].repeat(11, 0)
    return {"xx": xx.tolist(), "yy": xx.tolist(), "prob": prob.tolist(), "n": 11}, x, y


def test_decision_boundary_figure():
    grid, x, y = synthetic()
    fig = decision_boundary(grid, x, y, title="spirals")
    assert [t.name for t in fig.data] == ["P(class 1)", "decision boundary (p = 0.5)", "class 0", "class 1"]
    assert [fig.data[2].marker.color, fig.data[3].marker.color] == list(CLASS_COLOURS)
    assert not {style.PLAIN, style.RESIDUAL} & set(CLASS_COLOURS)
    assert len(fig.data[2].x) + len(fig.data[3].x) == 50
    assert fig.layout.title.text == "spirals"
    assert fig.layout.xaxis.title.text.startswith("x₁") and fig.layout.yaxis.title.text.startswith("x₂")


def test_boundary_pair_and_bounds():
    grid, x, y = synthetic(5000)
    grid["prob"][0][0] = float("nan")
    fig = boundary_pair(grid, grid, x, y)
    assert len(fig.data) == 8 and sum(getattr(t, "showscale", None) is True for t in fig.data) == 1
    assert [a.text for a in fig.layout.annotations[:2]] == ["plain", "residual"]
    assert [a.font.color for a in fig.layout.annotations[:2]] == [style.PLAIN, style.RESIDUAL]
    assert len(fig.data[2].x) + len(fig.data[3].x) <= MAX_POINTS
    assert np.isnan(fig.data[0].z[0][0])         # a gap in the map, not a colour
    json.loads(fig.to_json())


def test_empty_inputs_do_not_raise():
    fig = decision_boundary({}, np.zeros((0, 2)), np.zeros(0), "empty")
    assert isinstance(fig, go.Figure) and len(fig.data) == 4
    decision_boundary({"xx": [0, 1], "yy": [0], "prob": [[0.1]]}, [[0, 0]], [1], "malformed")
