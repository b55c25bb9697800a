"""Attribution figures: trace types, titles, colours, upright images."""
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from resnet_viz.figures import style
from resnet_viz.figures.attribution import attribution_maps_figure, block_attribution_figure


def _maps(shape):
    rng = np.random.default_rng(0)
    return ({k: rng.random(shape) for k in ("none", "identity")},
            {k: rng.standard_normal(shape) for k in ("none", "identity")})


@pytest.mark.parametrize("shape", [(1, 1, 8, 8), (1, 8, 8), (8, 8)])
def test_maps_grid_of_heatmaps_for_grey_images(shape):
    sal, ig = _maps(shape)
    fig = attribution_maps_figure(torch.randn(shape), sal, ig)
    assert isinstance(fig, go.Figure)
    assert [type(t).__name__ for t in fig.data] == ["Heatmap"] * 6
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0] == "plain · input" and titles[2] == "plain · integrated gradients"
    assert titles[3] == "residual · input" and titles[4] == "residual · saliency |∂y/∂x|"
    assert max(len(t) for t in titles[:6]) <= 32                   # short: three fit side by side
    rows = [a for a in fig.layout.annotations if (a.name or "").startswith("row ")]
    assert [a.text for a in rows] == ["plain", "residual (identity, option A)"]   # full names per row
    assert rows[0].textangle == -90 and rows[0].y > rows[1].y and rows[1].font.color == style.RESIDUAL
    assert fig.layout.annotations[0].font.color == style.PLAIN
    assert fig.layout.annotations[3].font.color == style.RESIDUAL
    assert "saliency" in fig.layout.title.text
    assert all(fig.layout[f"yaxis{s}"].autorange == "reversed" for s in ["", "2", "6"])


def test_saliency_sequential_and_ig_diverging_symmetric():
    sal, ig = _maps((1, 3, 5, 5))
    fig = attribution_maps_figure(np.random.rand(3, 5, 5), sal, ig)
    assert type(fig.data[0]).__name__ == "Image"          # colour input shown as a picture
    s, g = fig.data[1], fig.data[2]
    assert s.zmin == 0 and s.colorscale == go.Heatmap(colorscale=style.SEQUENTIAL).colorscale
    assert g.zmid == 0 and g.zmin == -g.zmax
    assert g.colorscale == go.Heatmap(colorscale=style.DIVERGING).colorscale
    # Channel reductions: max of |grad| for saliency, sum for signed IG.
    np.testing.assert_allclose(np.asarray(s.z), sal["none"][0].max(0))
    np.testing.assert_allclose(np.asarray(g.z), ig["none"][0].sum(0))


def test_shared_scale_uses_one_range_per_column():
    sal, ig = _maps((6, 6))
    sal["identity"] = sal["identity"] * 100
    own = attribution_maps_figure(np.zeros((6, 6)), sal, ig)
    shared = attribution_maps_figure(np.zeros((6, 6)), sal, ig, shared_scale=True)
    assert own.data[1].zmax < own.data[4].zmax
    assert shared.data[1].zmax == shared.data[4].zmax


def test_block_bars_plain_vs_residual():
    fig = block_attribution_figure({"none": [0.5] * 3, "identity": [1.0, -0.2, 0.3]})
    assert [type(t).__name__ for t in fig.data] == ["Bar", "Bar"]
    assert [t.marker.color for t in fig.data] == [style.PLAIN, style.RESIDUAL]
    assert list(fig.data[1].x) == [1, 2, 3] and list(fig.data[1].y) == [1.0, -0.2, 0.3]
    assert fig.layout.title.text and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    assert fig.layout.barmode == "group"


def test_bad_map_shape_is_a_value_error():
    with pytest.raises(ValueError, match="expected an image"):
        attribution_maps_figure(np.zeros(5), {"none": np.zeros(5)}, {"none": np.zeros(5)})


def test_block_chart_label_follows_the_method():
    from resnet_viz.figures.attribution import block_attribution_figure
    vals = {"none": [0.5] * 3, "identity": [1.0, -0.2, 0.3]}
    assert "gradient × activation" in block_attribution_figure(vals).layout.yaxis.title.text
    assert "conductance" in block_attribution_figure(vals, "conductance").layout.yaxis.title.text


def test_completeness_reads_as_a_share_of_the_change():
    from resnet_viz.figures.attribution import completeness_text
    assert completeness_text(1.3, 13.0).startswith("The attributions add up to 90% of the class score's change")
    assert "10.0% gap" in completeness_text(1.3, 13.0) and "More integration steps" in completeness_text(1.3, 13.0)
    assert "More" not in completeness_text(0.01, 13.0)
    assert "barely changes" in completeness_text(0.0, 0.0)
