"""Fig. 7 response figures and ‖F(x)‖/‖x‖ per block (``resnet_viz.figures.responses``)."""
from __future__ import annotations

from resnet_viz.figures import responses as fr
from resnet_viz.figures import style
from test_figures_training import snap


def test_response_std_fig7_caption_and_sorting():
    run = snap(layers=5)
    run["response_std"] = [[0.5, 2.0, float("nan"), 1.0]]
    run["probe_step"] = [0]
    by_layer, ranked = fr.response_std([run]), fr.response_std([run], sort=True)
    assert fr.FIG7_CAPTION in by_layer.layout.title.text and fr.FIG7_CAPTION in ranked.layout.title.text
    assert list(by_layer.data[0].y) == [0.5, 2.0, None, 1.0]
    assert list(ranked.data[0].y) == [2.0, 1.0, 0.5, None]
    assert list(ranked.data[0].text[:2]) == ["r1", "r3"]
    assert "sorted" in ranked.layout.xaxis.title.text


def test_branch_ratio_skips_plain_and_marks_removed_shortcuts():
    fig = fr.branch_ratio([snap("none"), snap("identity", mask="1011")])
    assert len(fig.data) == 1 and fig.data[0].line.color == style.RESIDUAL
    assert fig.layout.yaxis.type == "log"
    assert list(fig.data[0].marker.symbol) == ["circle", "circle-open", "circle", "circle"]
    only_plain = fr.branch_ratio([snap("none")])
    assert not only_plain.data and any("plain" in a.text for a in only_plain.layout.annotations)
