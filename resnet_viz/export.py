"""Downloads: run histories, probes and any list of flat dicts (``rows_to_csv``) as CSV,
anything as strict JSON. The ``*_rows`` helpers flatten the pages' results into such lists.

CSV is for spreadsheets: one value per cell, missing or non-finite numbers left empty,
and text cells that a spreadsheet would run as a formula (=, +, -, @) prefixed with a quote
(OWASP "CSV injection"), since run labels can be typed by students.
"""
from __future__ import annotations

import csv
import io
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from resnet_viz.jsonsafe import dumps, to_jsonable
from resnet_viz.train.history import HISTORY_KEYS
from resnet_viz.labels import run_labels

Run = Mapping[str, Any]
HISTORY_COLUMNS = HISTORY_KEYS
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
    writer.writerow([_cell(h) for h in header])
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


def rows_to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Any list of flat dicts as CSV: the union of their keys is the header, in the order
    first seen, and a row without a key leaves that cell empty. Cells as in the other CSVs
    (non-finite numbers empty, formula guard, header included); a nested value (a list, a
    dict, an array) is written as strict JSON text in one cell.

    >>> rows_to_csv([{"a": 1}, {"b": float("nan"), "a": "=x"}])
    "a,b\n1,\n'=x,\n"
    """
    rows = [{str(k): v for k, v in row.items()} for row in rows]
    header = list(dict.fromkeys(k for row in rows for k in row))
    return _write(header, ([_flat(row.get(k)) for k in header] for row in rows))


def _flat(v: Any) -> Any:
    if isinstance(v, (Mapping, list, tuple, set, frozenset)) or (hasattr(v, "ndim") and getattr(v, "ndim", 0) > 0):
        return to_json(v)
    return v


def shatter_rows(reports: Sequence[Run], names: Sequence[str] = ("plain", "residual")) -> list[dict[str, Any]]:
    """Long rows of ``shatter_report`` results: (net, x, df/dx) per grid point, then (net,
    lag, autocorrelation) per lag (Balduzzi et al. 2017)."""
    rows: list[dict[str, Any]] = []
    for name, rep in zip(names, reports):
        rows += [{"net": name, "x": x, "df_dx": g} for x, g in zip(rep.get("x") or [], rep.get("gradients") or [])]
    for name, rep in zip(names, reports):
        rows += [{"net": name, "lag": k, "autocorrelation": a} for k, a in enumerate(rep.get("autocorr") or [])]
    return rows


def lag1_rows(sweep: Run) -> list[dict[str, Any]]:
    """One row per (curve, depth) of ``lag1_vs_depth``: kind, β, depth, mean and std of the
    lag-1 autocorrelation, the scaled theory value and each seed's value."""
    rows = []
    seeds = list(sweep.get("seeds") or [])
    theory = list(sweep.get("theory") or [])
    for c, curve in enumerate(sweep.get("curves") or []):
        th = (theory[c].get("values") if c < len(theory) else None) or []
        for i, depth in enumerate(sweep.get("depths") or []):
            row = {"kind": curve.get("kind"), "beta": curve.get("beta"), "depth": depth,
                   "mean_lag1": _at(curve.get("mean"), i), "std_lag1": _at(curve.get("std"), i),
                   "theory": _at(th, i)}
            per_seed = _at(curve.get("lag1"), i) or []
            row.update({f"seed {s}": _at(per_seed, j) for j, s in enumerate(seeds)})
            rows.append(row)
    return rows


def attribution_rows(result: Run) -> list[dict[str, Any]]:
    """Per-block attribution of ``explain``'s result, one row per (net, block), with the
    target, each net's prediction and its integrated-gradients completeness gap."""
    rows = []
    for kind, values in (result.get("blocks") or {}).items():
        cls, prob = (result.get("prediction") or {}).get(kind, (None, None))
        for b, v in enumerate(values, start=1):
            rows.append({"net": kind, "block": b, "attribution": v, "target": result.get("target"),
                         "predicted_class": cls, "probability": prob,
                         "ig_completeness_gap": (result.get("delta") or {}).get(kind)})
    return rows


def attribution_map_rows(result: Run) -> list[dict[str, Any]]:
    """Saliency and integrated-gradient maps in long format: (net, method, channel, row,
    col, value) per pixel, maps as (C, H, W) or (H, W)."""
    rows = []
    for method in ("saliency", "integrated"):
        for kind, arr in (result.get(method) or {}).items():
            maps = np.asarray(to_jsonable(arr), dtype=np.float64)
            while maps.ndim > 3 and maps.shape[0] == 1:
                maps = maps[0]                             # (1, C, H, W) -> (C, H, W)
            maps = maps.reshape((1,) * (3 - maps.ndim) + maps.shape) if maps.ndim < 3 else maps
            for (c, i, j), v in np.ndenumerate(maps):
                rows.append({"net": kind, "method": method, "channel": c, "row": i, "col": j, "value": float(v)})
    return rows


def probe_rows(runs: Sequence[Run], series: Sequence[str] = ("response_std", "branch_ratio")) -> list[dict[str, Any]]:
    """Per-layer probe series of the runs in long format: (run, step, quantity, index,
    name, value) per probe step and layer (He et al. 2016 Fig. 7 responses, ‖F(x)‖/‖x‖)."""
    names_of = {"response_std": "response_names", "grad_norms": "layer_names"}
    rows = []
    for run, label in zip(runs, run_labels(runs)):
        for what in series:
            names = list(run.get(names_of.get(what, "")) or [])
            for step, values in zip(run.get("probe_step") or [], run.get(what) or []):
                rows += [{"run": label, "step": step, "quantity": what, "index": k,
                          "name": names[k] if k < len(names) else f"block {k}", "value": v}
                         for k, v in enumerate(values or [])]
    return rows


def grid_rows(grids: Mapping[str, Run]) -> list[dict[str, Any]]:
    """``decision_grid`` results (``{"plain": grid, ...}``) as (net, x1, x2, p_class1) rows."""
    rows = []
    for name, g in grids.items():
        for yv, line in zip(g.get("yy") or [], g.get("prob") or []):
            rows += [{"net": name, "x1": xv, "x2": yv, "p_class1": p} for xv, p in zip(g.get("xx") or [], line)]
    return rows


to_json = dumps  # the download buttons' name for the one encoder
