"""Shared helpers for figures built from trainer snapshots: labels, colours, thinning.

A run is a ``Trainer.snapshot()`` dict (docs/DESIGN.md). Its label ("plain-20",
"resnet-20 (identity)") and colour come from its spec alone, so the same run looks the
same on every page; a ``label`` key in the run overrides the derived one.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from . import style

Run = Mapping[str, Any]
MAX_POINTS = 2000           # points per trace drawn at most
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon")
_FAMILY = {"identity": "resnet", "projection": "resnet", "gated": "highway"}


def finite(v: Any) -> float | None:
    """``v`` as a float, or None (a gap in a plotly line) if missing or not finite."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


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


def run_kind(run: Run) -> str:
    """The run's effective shortcut kind: "none" when no block keeps its shortcut."""
    spec = run.get("spec") or {}
    kind = str(spec.get("shortcut", "none"))
    mask = str(spec.get("shortcut_mask") or "")
    return "none" if mask and "1" not in mask else kind


def run_label(run: Run) -> str:
    """A short name for a run: its ``label`` key, else e.g. "plain-20", "resnet-56 (identity)"."""
    if run.get("label"):
        return str(run["label"])
    spec = run.get("spec") or {}
    kind = run_kind(run)
    depth = spec.get("depth", "?")
    if kind == "none":
        return f"plain-{depth}"
    label = f"{_FAMILY.get(kind, kind)}-{depth} ({kind})"
    mask = str(spec.get("shortcut_mask") or "")
    if "0" in mask:
        label += f" mask {mask}" if len(mask) <= 12 else f" {mask.count('1')}/{len(mask)} shortcuts"
    scale = finite(spec.get("residual_scale"))
    if scale is not None and scale != 1.0:
        label += f" α={scale:g}"
    return label


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Labels made unique: a clash gets the seed, then a counter (trace names must differ)."""
    base = [run_label(r) for r in runs]
    seeds = [(r.get("spec") or {}).get("seed") for r in runs]
    labels = list(base)
    for lab in set(base):
        group = [i for i, b in enumerate(base) if b == lab]
        if len(group) > 1 and len({seeds[i] for i in group}) == len(group):
            for i in group:
                labels[i] = f"{lab} seed {seeds[i]}"
    total = {lab: labels.count(lab) for lab in labels}
    seen: dict[str, int] = {}
    for i, lab in enumerate(labels):
        seen[lab] = seen.get(lab, 0) + 1
        if total[lab] > 1:
            labels[i] = f"{lab} #{seen[lab]}"
    return labels


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
