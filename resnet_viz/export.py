"""Downloads: run histories and probes as CSV, anything as strict JSON.

CSV is for spreadsheets: one value per cell, missing or non-finite numbers left empty,
and text cells that a spreadsheet would run as a formula (=, +, -, @) prefixed with a quote
(OWASP "CSV injection"), since run labels can be typed by students.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .figures.runs import run_labels

Run = Mapping[str, Any]
HISTORY_COLUMNS = ("step", "train_loss", "train_acc", "val_loss", "val_acc")
SPEC_COLUMNS = ("model", "depth", "shortcut", "shortcut_mask", "seed")


def _cell(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()                        # numpy / torch scalar -> Python number
        except (ValueError, RuntimeError):      # an array with more than one element
            v = str(v)
    if v is None or isinstance(v, bool):
        return "" if v is None else str(v)
    if isinstance(v, (int, float)):
        return v if math.isfinite(v) else ""
    text = str(v)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _write(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return buf.getvalue()


def runs_to_csv(runs: Sequence[Run]) -> str:
    """One row per logged history step per run: label, spec hash, status, a few spec fields
    (model, depth, shortcut, mask, seed) and the step's train/val loss and accuracy."""
    header = ("run", "spec_hash", "status") + SPEC_COLUMNS + HISTORY_COLUMNS
    rows = []
    for run, label in zip(runs, run_labels(runs)):
        spec, hist = run.get("spec") or {}, run.get("history") or {}
        fixed = [label, run.get("spec_hash", ""), run.get("status", "")] + [spec.get(c) for c in SPEC_COLUMNS]
        for i in range(len(hist.get("step") or [])):
            rows.append(fixed + [_at(hist.get(c), i) for c in HISTORY_COLUMNS])
    return _write(header, rows)


def _at(values: Sequence[Any] | None, i: int) -> Any:
    return values[i] if values is not None and i < len(values) else None


def probes_to_csv(run: Run) -> str:
    """Gradient norms in long format: one row per (probe step, weight layer)."""
    names = list(run.get("layer_names") or [])
    rows = []
    for step, norms in zip(run.get("probe_step") or [], run.get("grad_norms") or []):
        for k, g in enumerate(norms or []):
            rows.append([step, k, names[k] if k < len(names) else f"layer {k}", g])
    return _write(("step", "layer_index", "layer", "grad_norm"), rows)


def to_plain(obj: Any) -> Any:
    """``obj`` with numpy/torch values, tuples, sets, dataclasses and paths turned into JSON
    types, and NaN/±inf into None (JSON has no NaN; ``json.dumps`` would write invalid JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_plain(dataclasses.asdict(obj))
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):                   # numpy arrays and scalars, torch tensors
        return to_plain(obj.detach().cpu().tolist() if hasattr(obj, "detach") else obj.tolist())
    if isinstance(obj, (set, frozenset)):
        return [to_plain(v) for v in sorted(obj, key=repr)]
    if isinstance(obj, Iterable) and not isinstance(obj, (bytes, bytearray)):
        return [to_plain(v) for v in obj]
    return str(obj)


def to_json(obj: Any, indent: int | None = None) -> str:
    """Strict JSON for a download button: numpy/torch scalars as numbers, NaN as null."""
    return json.dumps(to_plain(obj), indent=indent, allow_nan=False, ensure_ascii=False)
