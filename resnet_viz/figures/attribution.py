"""Attribution figures: where plain and residual nets look, and which blocks matter.

Pure builders: arrays (numpy or CPU torch) in, ``go.Figure`` out.
- ``attribution_maps_figure``: one row per net: the input, its saliency map (Simonyan et
  al. 2014: max over channels of ``|∂y_c/∂x|``) and integrated gradients (Sundararajan et
  al. 2017: summed over channels, signed, so the map still sums to ``y(x) − y(x')``).
- ``block_attribution_figure``: per-block attribution bars, plain vs residual (gradient ×
  activation or conductance at each block's ``F(x)``, Dhamdhere et al. 2018).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from resnet_viz.figures.style import DIVERGING, SEQUENTIAL, base_layout, colour_for, label_for, short_label_for, template

COLUMNS = ("input", "saliency |∂y/∂x|", "integrated gradients")
TITLE_FONT = 13                       # subplot titles: short, so three fit side by side


def _array(a: Any) -> np.ndarray:
    """numpy from numpy or a torch tensor (detached, on the CPU), leading batch of 1 dropped."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    arr = np.asarray(a, dtype=np.float64)
    while arr.ndim > 3 and arr.shape[0] == 1:
        arr = arr[0]                                   # (1, C, H, W) -> (C, H, W)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an image (H, W) or (C, H, W), got shape {arr.shape}")
    return arr


def _map(a: Any, reduce: str) -> np.ndarray:
    """(C, H, W) -> (H, W): max for saliency (Simonyan et al. §3.1), sum for signed IG."""
    arr = _array(a)
    if arr.ndim == 3:
        arr = arr.max(0) if reduce == "max" else arr.sum(0)
    return np.nan_to_num(arr)


def _input_trace(image: Any) -> go.BaseTraceType:
    """Grey heatmap for one channel, an RGB image (min-max scaled) for three."""
    arr = _array(image)
    if arr.ndim == 3 and arr.shape[0] == 3:
        lo, hi = float(arr.min()), float(arr.max())
        rgb = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        return go.Image(z=rgb.transpose(1, 2, 0), hoverinfo="skip")
    grey = arr.mean(0) if arr.ndim == 3 else arr
    return go.Heatmap(z=grey, colorscale="gray", showscale=False,
                      hovertemplate="row %{y}, col %{x}<br>input %{z:.2f}<extra></extra>")


def _limit(maps: Sequence[np.ndarray], shared: bool, arr: np.ndarray) -> float:
    """Colour-scale limit: per map by default, since plain-net gradients can be far smaller."""
    pool = maps if shared else [arr]
    top = max(float(np.abs(m).max()) for m in pool)
    return top if top > 0 else 1.0


def attribution_maps_figure(image: Any, saliency: Mapping[str, Any], integrated: Mapping[str, Any],
                            title: str = "Where each net looks: saliency and integrated gradients",
                            shared_scale: bool = False) -> go.Figure:
    """Rows = nets (keys: "plain"/"residual" or shortcut kinds), columns = input, saliency, IG.

    Example: ``image`` (1, 8, 8); ``saliency = {"none": s0, "identity": s1}`` and
    ``integrated`` likewise, each (1, 1, 8, 8) -> a 2×3 grid of heatmaps, images upright.
    ``shared_scale`` uses one colour range per column so magnitudes compare across nets.
    """
    kinds = list(saliency)
    titles = [f"{short_label_for(k)} · {c}" for k in kinds for c in COLUMNS]
    fig = make_subplots(rows=len(kinds), cols=3, subplot_titles=titles,
                        horizontal_spacing=0.04, vertical_spacing=0.12)
    sal = {k: _map(saliency[k], "max") for k in kinds}
    ig = {k: _map(integrated[k], "sum") for k in kinds}
    for r, kind in enumerate(kinds, start=1):
        fig.add_trace(_input_trace(image), row=r, col=1)
        top = _limit(list(sal.values()), shared_scale, sal[kind])
        fig.add_trace(go.Heatmap(z=sal[kind], colorscale=SEQUENTIAL, zmin=0, zmax=top, showscale=False,
                                 hovertemplate="|∂y/∂x| %{z:.3g}<extra></extra>"), row=r, col=2)
        top = _limit(list(ig.values()), shared_scale, ig[kind])
        fig.add_trace(go.Heatmap(z=ig[kind], colorscale=DIVERGING, zmid=0, zmin=-top, zmax=top,
                                 showscale=False, hovertemplate="IG %{z:.3g}<extra></extra>"),
                      row=r, col=3)
    for ann, kind in zip(fig.layout.annotations, [k for k in kinds for _ in COLUMNS]):
        ann.font.update(color=colour_for(kind), size=TITLE_FONT)   # titles in the net's colour
    _row_labels(fig, kinds)
    _square_pixels(fig, len(kinds) * 3)
    fig.update_layout(title=dict(text=title, x=0.0, xanchor="left"), template=template(),
                      height=60 + 260 * len(kinds), margin=dict(l=40, r=20, t=90, b=20))
    return fig


def _row_labels(fig: go.Figure, kinds: Sequence[str]) -> None:
    """The full name of each row's net (``label_for``), vertical, left of its input image."""
    for r, kind in enumerate(kinds, start=1):
        lo, hi = fig.get_subplot(r, 1).yaxis.domain
        fig.add_annotation(text=label_for(kind), textangle=-90, xref="paper", yref="paper", x=0.0,
                           xanchor="right", xshift=-6, y=(lo + hi) / 2, yanchor="middle", showarrow=False,
                           font=dict(color=colour_for(kind), size=12), name=f"row {kind}")


def _square_pixels(fig: go.Figure, n_axes: int) -> None:
    """Row 0 at the top (images upright), square pixels, no tick labels."""
    for i in range(1, n_axes + 1):
        suffix = "" if i == 1 else str(i)
        fig.layout[f"yaxis{suffix}"].update(autorange="reversed", scaleanchor=f"x{suffix}",
                                            constrain="domain", showticklabels=False, showgrid=False)
        fig.layout[f"xaxis{suffix}"].update(constrain="domain", showticklabels=False, showgrid=False)


BLOCK_Y_TITLES = {"grad_x_act": "Σ gradient × activation at F(x)",
                  "conductance": "Σ layer conductance at F(x) (from a black image)"}


def block_attribution_figure(values: Mapping[str, Sequence[float]], method: str = "grad_x_act",
                             title: str = "How much each block's F(x) pushes the prediction") -> go.Figure:
    """Grouped bars per block, one colour per net (plain vermillion, residual blue).

    Example: ``{"none": [0.4]*9, "identity": [1.6, 1.2, ...]}`` (9 blocks each) -> 2 bar
    traces over blocks 1..9. In a plain net every block carries the whole signal, so its
    bars tend to be equal; residual blocks each add only their own share. The y label names
    ``method`` (``analysis.attribution.BLOCK_METHODS``).
    """
    fig = go.Figure()
    for kind, vals in values.items():
        vals = [float(v) for v in vals]
        fig.add_trace(go.Bar(x=list(range(1, len(vals) + 1)), y=vals, name=label_for(kind),
                             marker_color=colour_for(kind),
                             hovertemplate="block %{x}: %{y:.3g}<extra>" + label_for(kind) + "</extra>"))
    fig.update_layout(barmode="group", bargap=0.25)
    fig.add_hline(y=0, line_color="#7F7F7F", line_width=1)
    fig.update_xaxes(dtick=1)
    return base_layout(fig, title, "residual block (input → output)", BLOCK_Y_TITLES[method])


def completeness_text(delta: float, change: float) -> str:
    """One sentence on integrated gradients' completeness (Sundararajan et al. 2017, Prop. 1):
    the attributions should add up to the class score's change from the baseline."""
    if not change > 1e-12:
        return ("The class score barely changes between the baseline and this image, so the "
                "attributions have almost nothing to explain.")
    gap = delta / change
    share = max(0.0, 100.0 * (1.0 - gap))
    more = " More integration steps make the gap smaller." if gap > 0.05 else ""
    return (f"The attributions add up to {share:.0f}% of the class score's change from the "
            f"baseline ({gap:.1%} gap; change {change:.3g}, gap {delta:.2g}).{more}")

