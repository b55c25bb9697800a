"""How a run is named on every page, chart and file: "plain-20", "resnet-56 (identity)".

A run is a trainer snapshot (docs/DESIGN.md). Its label comes from its spec alone, so the
same run has the same name everywhere; a ``label`` key in the run overrides the derived one.
Plain text, no plotting: the figures, exports and pages all import it from here.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

Run = Mapping[str, Any]
_FAMILY = {"identity": "resnet", "projection": "resnet", "gated": "highway"}


def finite(v: Any) -> float | None:
    """``v`` as a float, or None (a gap in a plotly line) if missing or not finite."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


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
