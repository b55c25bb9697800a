"""Architecture diagram and table: drawn from the spec alone, shortcuts follow the mask."""
from __future__ import annotations

import json

import pytest

from resnet_viz.figures import style
from resnet_viz.figures.architecture import MAX_BOXES, architecture_diagram, architecture_table, stem_and_head
from resnet_viz.nets.models import build_model, count_params
from resnet_viz.spec import ExperimentSpec


def names(fig, prefix: str) -> list[str]:
    return [s.name for s in fig.layout.shapes if s.name.startswith(prefix + " ")]


def texts(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations]


@pytest.mark.parametrize("spec", [
    ExperimentSpec(depth=3, dataset="moons", shortcut_mask="101"),
    ExperimentSpec(depth=3, dataset="moons", shortcut="gated", shortcut_mask="101"),
    ExperimentSpec(model="cnn", depth=8, width=4, shortcut_mask="101"),
    ExperimentSpec(model="cnn", block="bottleneck", depth=11, width=2, shortcut="projection", shortcut_mask="101"),
])
def test_mask_101_shows_two_shortcuts_and_one_removed(spec):
    fig = architecture_diagram(spec)
    assert names(fig, "shortcut") == ["shortcut 0", "shortcut 2"]
    assert names(fig, "removed") == ["removed 1"]
    assert len(names(fig, "block")) == 3 and {"input", "stem", "head"} <= {s.name for s in fig.layout.shapes}
    assert texts(fig).count("removed") == 1
    removed = [s for s in fig.layout.shapes if s.name == "removed 1"][0]
    assert removed.line.dash == "dot" and removed.opacity < 1


def test_plain_net_draws_no_shortcut():
    fig = architecture_diagram(ExperimentSpec(model="cnn", depth=20, width=4, shortcut="none"))
    assert not names(fig, "shortcut") and not names(fig, "removed") and len(names(fig, "block")) == 9
    assert fig.layout.title.text.startswith("plain-20")


@pytest.mark.parametrize("block,depth,n_proj", [("basic", 20, 2), ("bottleneck", 29, 3)])
def test_projection_labels_only_where_the_shape_changes(block, depth, n_proj):
    spec = ExperimentSpec(model="cnn", block=block, depth=depth, width=4, shortcut="projection")
    fig = architecture_diagram(spec)
    assert texts(fig).count("1×1 proj") == n_proj
    rows = architecture_table(spec)
    changed = [r["block"] for r in rows if r["in_channels"] != r["out_channels"] or r["stride"] != 1]
    assert [r["block"] for r in rows if r["shortcut"] == "projection"] == changed
    colours = {s.name: s.line.color for s in fig.layout.shapes}
    assert colours[f"shortcut {changed[-1]}"] == style.PROJECTION and colours["shortcut 1"] == style.RESIDUAL


def test_identity_cnn_pads_at_downsampling_and_gated_labels_each_gate():
    fig = architecture_diagram(ExperimentSpec(model="cnn", depth=20, width=4))
    assert texts(fig).count("/2, zero-pad") == 2 and "1×1 proj" not in texts(fig)
    assert any("3×3 conv, 8, /2" in t for t in texts(fig))
    gated = architecture_diagram(ExperimentSpec(model="cnn", depth=20, width=4, shortcut="gated"))
    assert texts(gated).count("gate T(x)") == 9
    assert {s.line.color for s in gated.layout.shapes if s.name.startswith("shortcut")} == {style.GATED}


def test_deep_nets_stay_readable():
    fig = architecture_diagram(ExperimentSpec(model="cnn", depth=110, width=4))
    boxes = names(fig, "block")
    assert len(boxes) == 5 and boxes[0] == "block 0-17"           # runs of identical blocks
    assert "×18" in texts(fig)
    mlp = architecture_diagram(ExperimentSpec(depth=1000, width=4, dataset="moons",
                                              shortcut_mask="10" * 500))
    assert len(names(mlp, "block")) <= MAX_BOXES and len(names(mlp, "shortcut")) <= MAX_BOXES
    assert mlp.layout.height < 3000
    json.loads(mlp.to_json())


def test_dict_spec_and_hover_trace():
    spec = ExperimentSpec(depth=2, dataset="moons")
    fig = architecture_diagram(spec.to_dict())
    assert len(fig.data) == 1 and len(fig.data[0].y) == 2 + 3       # input, stem, 2 blocks, head
    assert not fig.layout.xaxis.visible and fig.layout.height > 0 and fig.layout.title.text


@pytest.mark.parametrize("kw", [
    dict(depth=3, dataset="moons", shortcut="gated", mlp_block_layers=1),
    dict(depth=4, dataset="digits", mlp_block_layers=2, norm="none"),
    dict(model="cnn", depth=20, width=4, shortcut="projection"),
    dict(model="cnn", depth=8, width=4, shortcut="gated", norm="none", shortcut_mask="010"),
    dict(model="cnn", block="bottleneck", depth=11, width=2, shortcut="projection", dataset="cifar10"),
])
def test_table_params_match_the_built_model(kw):
    spec = ExperimentSpec(**kw)
    rows, ends = architecture_table(spec), stem_and_head(spec)
    net = build_model(spec)
    assert [r["params"] for r in rows] == [count_params(b) for b in net.blocks]
    assert ends["stem"][1] == count_params(net.stem) and ends["head"][1] == count_params(net.head)
    assert {"block", "stage", "in_channels", "out_channels", "stride", "shortcut", "params"} <= set(rows[0])


def test_table_stages_and_shapes():
    rows = architecture_table(ExperimentSpec(model="cnn", depth=20, width=16, dataset="cifar10"))
    assert [r["stage"] for r in rows] == [1] * 3 + [2] * 3 + [3] * 3
    assert rows[3]["stride"] == 2 and rows[3]["out_shape"] == "32×16×16" and rows[-1]["out_shape"] == "64×8×8"
    assert [r["shortcut"] for r in rows].count("pad") == 2
