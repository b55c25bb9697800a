"""Shared helpers for figures built from trainer snapshots: colours, markers, thinning.

A run is a ``Trainer.snapshot()`` dict (docs/DESIGN.md). Its colour comes from its spec
alone, like its label (``resnet_viz.labels``), so the same run looks the same on every page.
"""
from __future__ import annotations

from typing import Any, Sequence

import plotly.graph_objects as go

from resnet_viz.figures import style
from resnet_viz.labels import Run, finite, run_kind, run_label, run_labels  # noqa: F401 (re-used here)

MAX_POINTS = 2000           # points per trace drawn at most
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon")


def positive(v: Any) -> float | None:
    """Like ``finite`` but also None for values a log axis cannot show (<= 0)."""
    f = finite(v)
    return f if f is not None and f > 0 else None


def downsample_indices(n: int, max_points: int = MAX_POINTS) -> list[int]:
    """At most ``max_points`` evenly spaced indices into ``range(n)``, first and last kept."""
    if n <= max_points:
        return list(range(n))
    m = max(2, max_points)
    return sorted({round(i * (n - 1) / (m - 1)) for i in range(m)})


def run_styles(runs: Sequence[Run]) -> list[tuple[str, str, str | None]]:
    """(label, colour, marker symbol or None) per run.

    The colour is the shortcut kind's (plain vermillion, residual blue, ...); when several
    runs share a kind, each gets its own marker symbol so they can be told apart.
    """
    kinds = [run_kind(r) for r in runs]
    repeated = len(set(kinds)) < len(kinds)
    count: dict[str, int] = {}
    out = []
    for label, kind in zip(run_labels(runs), kinds):
        k = count[kind] = count.get(kind, -1) + 1
        out.append((label, style.colour_for(kind), SYMBOLS[k % len(SYMBOLS)] if repeated else None))
    return out


def probe_index(run: Run, at: str | int, key: str = "grad_norms") -> int | None:
    """Index of the probe row for ``at``: "first", "last", or the probe step nearest a step.

    None when the run has no probe rows for ``key`` yet.
    """
    n = min(len(run.get("probe_step") or []), len(run.get(key) or []))
    if n == 0:
        return None
    if at == "first":
        return 0
    if at == "last":
        return n - 1
    if isinstance(at, str) or isinstance(at, bool) or finite(at) is None:
        raise ValueError(f"at must be 'first', 'last' or a step number (got {at!r})")
    steps = list(run["probe_step"])[:n]
    return min(range(n), key=lambda i: (abs(float(steps[i]) - float(at)), i))


def line_style(colour: str, symbol: str | None, dash: str = "solid") -> dict[str, Any]:
    # Runs sharing a shortcut kind share its colour; a marker symbol tells them apart.
    extra = {"mode": "lines+markers", "marker": dict(symbol=symbol, color=colour, maxdisplayed=12)} \
        if symbol else {"mode": "lines"}
    return dict(line=dict(color=colour, dash=dash), **extra)


def empty_note(fig: go.Figure, text: str) -> None:
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                       font=dict(color=style.REFERENCE), name="empty")

