"""Numbers from the students' records and the server's counters."""
from __future__ import annotations

import sys
from typing import Any

from classroom.constants import ROOT


def pct(values: list[float], q: float) -> float | None:
    """The ``q`` quantile of ``values`` (linear interpolation), None if there are none."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Page loads and times-to-result of a group of students."""
    ok = [r for r in records if r.get("ok")]
    loads = [r["load_s"] for r in records if "load_s" in r]
    results = [r["result_s"] for r in ok]
    return {"n": len(records), "ok": len(ok),
            "failed": [r.get("error") or r.get("errors") for r in records if not r.get("ok")][:5],
            "load_p50_s": pct(loads, 0.5), "load_p95_s": pct(loads, 0.95), "load_max_s": max(loads, default=None),
            "result_p50_s": pct(results, 0.5), "result_p95_s": pct(results, 0.95),
            "result_max_s": max(results, default=None),
            "since_open_max_s": max((r["since_open_s"] for r in ok), default=None)}


def compute_for(stats: dict[str, Any], keys: list[str]) -> dict[str, float]:
    """The training work the server counted for the specs ``keys``."""
    per = stats.get("per_key", {})
    rows = [per[k] for k in keys if k in per]
    return {"jobs_built": sum(r.get("built", 0) for r in rows),
            "steps": sum(r.get("steps", 0) for r in rows),
            "cpu_s": round(sum(r.get("cpu_s", 0.0) for r in rows), 2),
            # server side: from the first trainer built to the last step of the group
            "train_span_s": round(max(r["last"] for r in rows) - min(r["first"] for r in rows), 2)
            if rows else None}


def pair_keys(params: dict[str, str]) -> list[str]:
    """The spec hashes of the pair the Train page trains for ``params``."""
    sys.path.insert(0, str(ROOT))
    from resnet_viz.serve.pair import comparison_pair
    from resnet_viz.spec import parse_spec
    spec, notices = parse_spec(params)
    assert not notices, notices
    return [s.spec_hash() for s in comparison_pair(spec)]


def store_check(data_dir: Any) -> dict[str, Any]:
    """The run store, read at the end as a cross-check: one record per distinct spec."""
    sys.path.insert(0, str(ROOT))
    from resnet_viz.serve.store import RunStore
    store = RunStore(data_dir)
    rows = store.list(limit=1000)
    out = {"runs": len(rows), "statuses": sorted({r.status for r in rows})}
    store.close()
    return out


def fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "-"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)
