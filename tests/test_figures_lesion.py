"""Figure builders for Veit et al. 2016: the right traces, colours, labels and scales."""
import pytest
import torch

from resnet_viz.analysis.lesion import lesion_random_k, lesion_study
from resnet_viz.analysis.paths import gradient_by_path_length, path_length_distribution
from resnet_viz.figures.lesion import (lesion_figure, lesion_k_figure, path_distribution_figure,
                                       paths_figure)
from resnet_viz.figures.style import PLAIN, REFERENCE, RESIDUAL
from resnet_viz.nets.models import build_model
from resnet_viz.spec import ExperimentSpec


def _study(acc, base, down=None):
    return {"baseline_acc": base, "baseline_loss": 0.1, "acc": acc, "loss": [1.0] * len(acc),
            "acc_drop": [base - a for a in acc], "downsampling": down or [False] * len(acc)}


def _shape_lines(fig):
    return [(s.type, s.line.dash, s.line.color) for s in fig.layout.shapes]


def test_lesion_figure_plain_vs_residual():
    fig = lesion_figure({"none": _study([0.1, 0.12, 0.09], 0.9),
                         "identity": _study([0.85, 0.96, 0.97], 0.97, [False, True, False])},
                        chance=0.1)
    plain, plain_base, res, res_base, down = fig.data
    assert plain.name.startswith("plain") and res.name.startswith("residual")
    assert (plain.line.color, res.line.color) == (PLAIN, RESIDUAL)
    assert list(res.x) == [0, 1, 2] and list(res.y) == pytest.approx([85, 96, 97])
    assert list(res.marker.symbol) == ["circle", "diamond", "circle"]
    for base, colour, acc in ((plain_base, PLAIN, 90), (res_base, RESIDUAL, 97)):
        assert base.name.endswith("intact") and base.line.dash == "dash"
        assert base.line.color == colour and list(base.y) == pytest.approx([acc, acc])
    assert down.name == "downsampling block" and down.marker.symbol == "diamond"
    verticals = [s for s in fig.layout.shapes if s.x0 == s.x1]
    assert [s.x0 for s in verticals] == [1]
    assert [s.y0 for s in fig.layout.shapes if s.y0 == s.y1 and s.line.color == REFERENCE] == [10]
    assert [a.text for a in fig.layout.annotations] == ["chance"]
    assert "(%)" in fig.layout.yaxis.title.text and "block" in fig.layout.xaxis.title.text
    assert fig.layout.title.text


def test_lesion_figure_without_downsampling_has_no_marker_entry():
    fig = lesion_figure({"plain": _study([0.1, 0.2], 0.9)})
    assert len(fig.data) == 2 and not fig.layout.shapes


def test_lesion_figures_from_real_results():
    spec = ExperimentSpec(model="cnn", dataset="digits", depth=8, width=4)
    model = build_model(spec).eval()
    x, y = torch.randn(20, 1, 8, 8), torch.randint(0, 10, (20,))
    fig = lesion_figure({"residual": lesion_study(model, x, y)})
    assert len(fig.data) == 3 and len(fig.data[0].x) == 3
    assert sorted(s.x0 for s in fig.layout.shapes if s.x0 == s.x1) == [1, 2]
    kfig = lesion_k_figure({"identity": lesion_random_k(model, x, y, trials=2)}, chance=0.1)
    assert list(kfig.data[0].x) == [0, 1, 2, 3] and kfig.data[0].error_y.visible
    assert kfig.data[0].line.color == RESIDUAL and "count" in kfig.layout.xaxis.title.text


def test_path_distribution_figure():
    fig = path_distribution_figure(path_length_distribution(10))
    (bar,) = fig.data
    assert list(bar.x) == list(range(11)) and sum(bar.y) == pytest.approx(100)
    assert "2^10" in fig.layout.title.text and "(%)" in fig.layout.yaxis.title.text


def test_paths_figure_has_three_panels_with_log_gradient():
    model = build_model(ExperimentSpec(model="mlp", dataset="digits", depth=4, width=8)).eval()
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    res = gradient_by_path_length(model, x, y, samples=2, batch_size=8)
    fig = paths_figure(res)
    dist, grad, eff = fig.data
    assert [t.type for t in fig.data] == ["bar", "scatter", "bar"]
    assert list(grad.y) == pytest.approx(res["grad_norm"]) and grad.line.color == RESIDUAL
    assert sum(eff.y) == pytest.approx(100) and sum(dist.y) == pytest.approx(100)
    assert fig.layout.yaxis2.type == "log" and fig.layout.showlegend is False
    for axis in (fig.layout.xaxis, fig.layout.xaxis2, fig.layout.xaxis3,
                 fig.layout.yaxis, fig.layout.yaxis2, fig.layout.yaxis3):
        assert axis.title.text
    assert "4 blocks" in fig.layout.title.text
