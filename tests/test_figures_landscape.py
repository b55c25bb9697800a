"""Landscape and singularity figures: trace types, titles, axis labels, palette."""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go

from resnet_viz.figures.landscape import (dead_units_figure, hessian_histogram_figure,
                                          loss_contour_figure, loss_slice_figure,
                                          loss_surface_figure, overlap_figure,
                                          participation_figure, singularity_figures)
from resnet_viz.figures.style import PLAIN, RESIDUAL

AX = np.linspace(-1, 1, 5).tolist()
SLICE = {"alpha": AX, "loss": [3.0, 1.0, 0.1, 1.5, 4.0], "center_loss": 0.1}
SURFACE = {"alpha": AX, "beta": AX, "center_loss": 0.1,
           "loss": [[0.1 + a * a + b * b for a in AX] for b in AX]}
LAYERS = ["blocks.0.branch.act1", "blocks.1.branch.act1", "head.act"]


def report(dead, pr, cos, eigs):
    return {"dead": {"layers": LAYERS, "fraction": dead},
            "overlap": {"layers": LAYERS, "mean_max_cos": cos, "frac_pairs_above": [0, 0, 0]},
            "participation": {"layers": LAYERS, "ratio": pr, "singular_values": [[1.0]] * 3},
            "hessian": {"eigenvalues": eigs, "tol": 1e-3, "near_zero_fraction": 0.5,
                        "n_params": len(eigs)}, "hessian_error": None}


REPORTS = {"plain": report([0.1, 0.2, 0.0], [0.2, 0.3, 0.2], [0.6, 0.7, 0.6],
                          [1e-6, 0.0, 2.0, -1e-5]),
           "residual": report([0.0, 0.0, 0.0], [0.6, 0.5, 0.6], [0.5, 0.5, 0.5],
                             [1e-6, 0.5, 2.0, -0.1])}


def assert_labelled(fig: go.Figure, title_part: str) -> None:
    assert title_part in fig.layout.title.text
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    json.dumps(fig.to_plotly_json(), default=str)        # serialisable for the page


def test_slice_figure_plain_vs_residual():
    fig = loss_slice_figure({"plain": SLICE, "residual": SLICE})
    assert [type(t) for t in fig.data] == [go.Scatter, go.Scatter]
    assert [t.line.color for t in fig.data] == [PLAIN, RESIDUAL]
    assert [t.name for t in fig.data] == ["plain", "residual"]
    assert fig.layout.yaxis.type == "log"
    assert "nats" in fig.layout.yaxis.title.text and "α" in fig.layout.xaxis.title.text
    assert_labelled(fig, "1-D loss slice")
    assert loss_slice_figure({"none": SLICE}, log_y=False).layout.yaxis.type != "log"


def test_surface_and_contour():
    fig = loss_surface_figure(SURFACE, kind="none")
    assert isinstance(fig.data[0], go.Surface)
    z = np.asarray(fig.data[0].z)
    np.testing.assert_allclose(z, np.log10(np.asarray(SURFACE["loss"])))
    assert "log₁₀" in fig.layout.scene.zaxis.title.text
    assert "plain" in fig.layout.title.text
    con = loss_contour_figure(SURFACE, kind="identity", log=False)
    assert isinstance(con.data[0], go.Contour) and isinstance(con.data[1], go.Scatter)
    np.testing.assert_allclose(np.asarray(con.data[0].z), SURFACE["loss"])
    assert con.data[1].marker.color == RESIDUAL
    assert "β" in con.layout.yaxis.title.text
    assert_labelled(con, "Loss contours")


def test_cancelled_surface_leaves_gaps():
    part = dict(SURFACE, loss=[row[:] for row in SURFACE["loss"]])
    part["loss"][4] = [None] * 5
    z = np.asarray(loss_contour_figure(part).data[0].z, dtype=float)
    assert np.isnan(z[4]).all() and np.isfinite(z[:4]).all()


def test_layer_figures():
    for build, key, title in ((dead_units_figure, "dead", "dead units"),
                              (overlap_figure, "overlap", "Overlap"),
                              (participation_figure, "participation", "participation ratio")):
        fig = build({k: r[key] for k, r in REPORTS.items()})
        assert [type(t) for t in fig.data] == [go.Scatter, go.Scatter]
        assert [t.line.color for t in fig.data] == [PLAIN, RESIDUAL]
        assert list(fig.data[0].x) == [1, 2, 3]
        assert "hidden layer" in fig.layout.xaxis.title.text
        assert_labelled(fig, title)


def test_hessian_histogram():
    fig = hessian_histogram_figure({k: r["hessian"]["eigenvalues"] for k, r in REPORTS.items()})
    assert [type(t) for t in fig.data] == [go.Histogram, go.Histogram]
    assert [t.marker.color for t in fig.data] == [PLAIN, RESIDUAL]
    assert "75% near zero" in fig.data[0].name and "25% near zero" in fig.data[1].name
    assert "|λ|" in fig.layout.xaxis.title.text
    assert_labelled(fig, "Hessian eigenvalues")


def test_singularity_figures_bundle():
    figs = singularity_figures(REPORTS)
    assert set(figs) == {"dead", "overlap", "participation", "hessian"}
    no_h = {k: dict(r, hessian=None) for k, r in REPORTS.items()}
    assert "hessian" not in singularity_figures(no_h)
