"""The net a spec describes, drawn from the spec alone (no weights, no data), Netscope-style.

He et al. 2016 Fig. 3 (right) draws a ResNet as a vertical stack of layers with the
shortcuts as curved arrows beside each pair of 3×3 convs: solid for identity shortcuts,
dotted where the shape changes (their option A zero-pads, option B is a 1×1 projection).
Here each block is one box labelled with its layers ("3×3 conv, 32, /2 → 3×3 conv, 32")
and its shortcut is an arrow beside it: blue for identity, "1×1 proj" where option B
projects, "gate T(x)" for Highway gates (Srivastava et al. 2015), and faded, dotted,
"removed" where ``shortcut_mask`` switched it off. Deep nets group identical blocks.
"""
from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, Mapping

import plotly.graph_objects as go

from resnet_viz.nets.models import block_plan
from resnet_viz.spec import ExperimentSpec
from resnet_viz.figures import style
from resnet_viz.labels import run_label

MAX_BOXES = 40                      # more blocks than this are grouped
X0, X1, XC = 2.6, 9.4, 6.0          # box left / right edge and main path, in data units
_ACT = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "tanh": "tanh", "gelu": "GELU"}
SHORTCUT_TEXT = {"none": "none (plain)", "removed": "removed", "identity": "identity",
                 "pad": "/2, zero-pad", "projection": "1×1 proj", "gated": "gate T(x)"}
_SHORTCUT_COLOUR = {"identity": style.RESIDUAL, "pad": style.RESIDUAL,
                    "projection": style.PROJECTION, "gated": style.GATED}


def as_spec(spec: ExperimentSpec | Mapping[str, Any]) -> ExperimentSpec:
    """An ``ExperimentSpec`` from itself or a dict (``spec.to_dict()``, a snapshot's spec)."""
    if isinstance(spec, ExperimentSpec):
        return spec
    known = {f.name for f in fields(ExperimentSpec)}
    return ExperimentSpec(**{k: v for k, v in spec.items() if k in known})


# --- the table -------------------------------------------------------------------------
def _bn(spec: ExperimentSpec, c: int) -> int:
    return 2 * c if spec.norm == "batch" else 0       # γ and β; running stats are buffers


def _conv(cin: int, cout: int, k: int, bias: bool) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def _kind(spec: ExperimentSpec, i: int, reshape: bool, conv: bool) -> str:
    """The shortcut block ``i`` really gets (``blocks.make_shortcut``)."""
    if spec.shortcut == "none":
        return "none"
    if not spec.block_has_shortcut(i):
        return "removed"
    if spec.shortcut == "gated":
        return "gated"
    if spec.shortcut == "projection" and conv and reshape:
        return "projection"
    return "pad" if reshape else "identity"


def _cnn_row(spec: ExperimentSpec, i: int, cin: int, cout: int, stride: int) -> dict[str, Any]:
    bias, down = spec.norm == "none", ", /2" if stride == 2 else ""
    if spec.block == "bottleneck":
        mid = cout // 4
        layers = [f"1×1 conv, {mid}", f"3×3 conv, {mid}{down}", f"1×1 conv, {cout}"]
        params = (_conv(cin, mid, 1, bias) + _conv(mid, mid, 3, bias) + _conv(mid, cout, 1, bias)
                  + 2 * _bn(spec, mid) + _bn(spec, cout))
    else:
        layers = [f"3×3 conv, {cout}{down}", f"3×3 conv, {cout}"]
        params = _conv(cin, cout, 3, bias) + _conv(cout, cout, 3, bias) + 2 * _bn(spec, cout)
    kind = _kind(spec, i, cin != cout or stride != 1, conv=True)
    params += {"projection": _conv(cin, cout, 1, False) + _bn(spec, cout),
               "gated": _conv(cout, cout, 1, True)}.get(kind, 0)
    return dict(block=i, stage=i // max(1, spec.n_blocks // 3) + 1, in_channels=cin,
                out_channels=cout, stride=stride, layers=" → ".join(layers), shortcut=kind,
                shortcut_desc=SHORTCUT_TEXT[kind], params=params)


def _mlp_row(spec: ExperimentSpec, i: int) -> dict[str, Any]:
    w = spec.width
    pre = ("BN, " if spec.norm == "batch" else "") + _ACT[spec.activation]
    kind = _kind(spec, i, False, conv=False)
    params = spec.mlp_block_layers * (_bn(spec, w) + w * w + w) + (w * w + w if kind == "gated" else 0)
    return dict(block=i, stage=1, in_channels=w, out_channels=w, stride=1,
                layers=" → ".join([f"{pre}, fc {w}"] * spec.mlp_block_layers), shortcut=kind,
                shortcut_desc=SHORTCUT_TEXT[kind], params=params)


def architecture_table(spec: ExperimentSpec | Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per residual block: block, stage, in/out channels, stride, output shape,
    layers, shortcut kind (none | removed | identity | pad | projection | gated), params.

    Parameter counts are computed from the shapes (the same as ``models.count_params`` of
    the built block), so even a 1000-block spec is tabulated without building it.
    """
    spec = as_spec(spec)
    if spec.model != "cnn":
        return [dict(_mlp_row(spec, i), out_shape=str(spec.width)) for i in range(spec.n_blocks)]
    _, h, w = spec.data_shape()[0]
    rows = []
    for i, (cin, cout, stride) in enumerate(block_plan(spec)):
        h, w = math.ceil(h / stride), math.ceil(w / stride)      # 3×3, pad 1, stride s
        rows.append(dict(_cnn_row(spec, i, cin, cout, stride), out_shape=f"{cout}×{h}×{w}"))
    return rows


def stem_and_head(spec: ExperimentSpec | Mapping[str, Any]) -> dict[str, tuple[str, int]]:
    """(label, parameter count) of the input, the stem and the head."""
    spec = as_spec(spec)
    shape, classes = spec.data_shape()
    w, bias = spec.width, spec.norm == "none"
    if spec.model == "cnn":
        out = block_plan(spec)[-1][1]
        return {"input": (f"input {'×'.join(map(str, shape))}", 0),
                "stem": (f"3×3 conv, {w}", _conv(shape[0], w, 3, bias) + _bn(spec, w)),
                "head": (f"global avg pool → fc, {classes}", out * classes + classes)}
    dim = math.prod(shape)
    pre = ("BN, " if spec.norm == "batch" else "") + _ACT[spec.activation]
    return {"input": (f"input, {dim} feature{'s' if dim > 1 else ''}", 0),
            "stem": (f"fc {w}", dim * w + w),
            "head": (f"{pre}, fc {classes}", _bn(spec, w) + w * classes + classes)}


# --- the diagram -----------------------------------------------------------------------
def _group(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Blocks per box: one each, else runs of identical blocks, else equal chunks."""
    if len(rows) <= MAX_BOXES:
        return [[r] for r in rows]
    groups: list[list[dict[str, Any]]] = []
    sig = ("stage", "in_channels", "out_channels", "stride", "shortcut")
    for r in rows:
        if groups and all(groups[-1][-1][k] == r[k] for k in sig):
            groups[-1].append(r)
        else:
            groups.append([r])
    if len(groups) <= MAX_BOXES:
        return groups
    size = math.ceil(len(rows) / MAX_BOXES)
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def _span(group: list[dict[str, Any]]) -> str:
    a, b = group[0]["block"], group[-1]["block"]
    return f"{a}" if a == b else f"{a}-{b}"


def _shortcut_style(group: list[dict[str, Any]]) -> tuple[str, str, str, bool] | None:
    """(shape name, label, colour, faded) of a box's shortcut; None for plain blocks."""
    on = [r["shortcut"] for r in group if r["shortcut"] not in ("none", "removed")]
    off = sum(r["shortcut"] == "removed" for r in group)
    times = f" ×{len(group)}" if len(group) > 1 else ""
    if not on and not off:
        return None
    if not on:
        return f"removed {_span(group)}", "removed" + times, style.REFERENCE, True
    kind = next((k for k in ("projection", "gated", "pad") if k in on), "identity")
    label = f"{len(on)}/{len(group)} on" if off else (SHORTCUT_TEXT[kind] if kind != "identity" else "") + times
    return f"shortcut {_span(group)}", label.strip(), _SHORTCUT_COLOUR[kind], False


class _Canvas:
    """Shapes and annotations collected as dicts and set once: ``fig.add_shape`` copies
    every shape already there, which makes a 40-box diagram take seconds."""

    def __init__(self) -> None:
        self.shapes: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []

    def add_shape(self, **kw: Any) -> None:
        self.shapes.append(kw)

    def add_annotation(self, **kw: Any) -> None:
        self.annotations.append(kw)


def _draw_shortcut(canvas: _Canvas, y: float, how: tuple[str, str, str, bool]) -> None:
    name, label, colour, faded = how
    xs, yt, yb = X1 + 0.1, y + 0.42, y - 0.42          # from the block's input to its output
    bulge = X1 + 1.3
    path = (f"M {xs},{yt} C {bulge},{yt} {bulge},{yb} {xs},{yb} "
            f"M {xs + 0.25},{yb + 0.14} L {xs},{yb} L {xs + 0.25},{yb - 0.14}")   # arrowhead
    canvas.add_shape(type="path", path=path, name=name, opacity=0.45 if faded else 1.0,
                     line=dict(color=colour, width=1.5 if faded else 2, dash="dot" if faded else "solid"))
    if label:
        canvas.add_annotation(x=bulge - 0.2, y=y, text=label, showarrow=False, xanchor="left",
                              font=dict(size=11, color=colour), name=f"{name} label")


def _box(canvas: _Canvas, y: float, text: str, fill: str, name: str) -> None:
    canvas.add_shape(type="rect", x0=X0, x1=X1, y0=y - 0.3, y1=y + 0.3, name=name,
                     line=dict(color="#4D4D4D", width=1), fillcolor=fill, layer="below")
    canvas.add_annotation(x=XC, y=y, text=text, showarrow=False, font=dict(size=11), name=f"{name} text")


def _block_text(group: list[dict[str, Any]]) -> str:
    first = group[0]
    if len(group) == 1:
        return f"<b>{first['block']}</b>  {first['layers']}"
    mixed = any(r["layers"] != first["layers"] for r in group)
    return f"<b>{_span(group)}</b>  {first['layers']}{' …' if mixed else ''} ×{len(group)}"


def _hover(group: list[dict[str, Any]]) -> str:
    r = group[0]
    head = f"block {r['block']}" if len(group) == 1 else f"blocks {_span(group)} ({len(group)})"
    kinds = sorted({SHORTCUT_TEXT[g['shortcut']] for g in group})
    return (f"{head}, stage {r['stage']}<br>{r['layers']}<br>{r['in_channels']} → {r['out_channels']}"
            f" channels, stride {r['stride']}, out {group[-1]['out_shape']}<br>shortcut: {', '.join(kinds)}"
            f"<br>{sum(g['params'] for g in group):,} parameters")


def architecture_diagram(spec: ExperimentSpec | Mapping[str, Any], title: str | None = None) -> go.Figure:
    """Input, stem, one box per block (grouped past ``MAX_BOXES``), head, top to bottom.

    Shapes are named for what they draw: "block 3", "shortcut 3", "removed 4" (or
    "shortcut 1-17" for a group), "stem", "head", "input", "link". Height grows with the
    number of boxes, so a deep net scrolls instead of shrinking to unreadable.
    """
    spec = as_spec(spec)
    rows, ends = architecture_table(spec), stem_and_head(spec)
    groups = _group(rows)
    n_items = len(groups) + 3
    canvas = _Canvas()
    _box(canvas, 0, ends["input"][0], "#FFFFFF", "input")
    _box(canvas, -1, ends["stem"][0], "#E8E8E8", "stem")
    hover = [(0, ends["input"][0]), (-1, f"stem: {ends['stem'][0]}<br>{ends['stem'][1]:,} parameters")]
    stage = 0
    for k, group in enumerate(groups):
        y = -2 - k
        _box(canvas, y, _block_text(group), "#F4F7FB" if group[0]["stage"] % 2 else "#FBF6F0",
             f"block {_span(group)}")
        how = _shortcut_style(group)
        if how:
            _draw_shortcut(canvas, y, how)
        if spec.model == "cnn" and group[0]["stage"] != stage:
            stage = group[0]["stage"]
            canvas.add_annotation(x=0.1, y=y, xanchor="left", showarrow=False, font=dict(size=11),
                                  text=f"stage {stage}<br>{group[0]['out_shape']}", name=f"stage {stage}")
        hover.append((y, _hover(group)))
    _box(canvas, 1 - n_items, ends["head"][0], "#E8E8E8", "head")
    hover.append((1 - n_items, f"head: {ends['head'][0]}<br>{ends['head'][1]:,} parameters"))
    for r in range(n_items - 1):   # the main path between boxes
        canvas.add_shape(type="line", x0=XC, x1=XC, y0=-r - 0.3, y1=-r - 0.7, name="link",
                         line=dict(color="#4D4D4D", width=1.5))
    out = go.Figure(go.Scatter(x=[XC] * len(hover), y=[y for y, _ in hover], hovertext=[t for _, t in hover],
                               mode="markers", marker=dict(size=24, opacity=0), hoverinfo="text",
                               name="details", showlegend=False))
    out.update_layout(shapes=canvas.shapes, annotations=canvas.annotations)
    return _diagram_layout(out, spec, rows, ends, n_items, title)


def _diagram_layout(fig: go.Figure, spec: ExperimentSpec, rows: list[dict[str, Any]],
                    ends: dict[str, tuple[str, int]], n_items: int, title: str | None) -> go.Figure:
    total = sum(r["params"] for r in rows) + ends["stem"][1] + ends["head"][1]
    alpha = f", α = {spec.residual_scale:g}" if spec.residual_scale != 1 and spec.shortcut != "none" else ""
    text = title or (f"{run_label({'spec': spec.to_dict()})}: {len(rows)} blocks, {total:,} parameters"
                     f"{alpha}<br><sup>shortcuts drawn beside each block (He et al. 2016, Fig. 3)</sup>")
    row_px = 34 if n_items > 16 else 48
    fig.update_layout(title=dict(text=text, x=0.0, xanchor="left"), template=style.template(),
                      height=110 + row_px * n_items, margin=dict(l=10, r=10, t=70, b=10),
                      showlegend=False, dragmode=False)
    fig.update_xaxes(visible=False, range=[0, 13], fixedrange=True, title_text="")
    fig.update_yaxes(visible=False, range=[0.6 - n_items, 0.6], fixedrange=True, title_text="")
    return fig
