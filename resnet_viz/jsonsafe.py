"""The one JSON encoder: every document the lab writes (CLI, run store, exports, lessons).

JSON has no NaN or infinity, and a strict parser (a browser's, PostgreSQL's ``jsonb``)
rejects ``json.dumps``'s default ``NaN``. A diverged run's history holds NaN losses, so
they become ``None``: plotly draws a gap there, which is what a chart of a diverged run
should show. numpy and torch values, tuples, sets, dataclasses and paths become plain types.
Imports nothing heavy, so any layer may use it.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """A deep copy of ``obj`` in JSON types only, NaN/±inf as None.

    >>> to_jsonable({"loss": (1.0, float("nan")), 2: {"x"}})
    {'loss': [1.0, None], '2': ['x']}
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):                   # numpy arrays and scalars, torch tensors
        return to_jsonable(obj.detach().cpu().tolist() if hasattr(obj, "detach") else obj.tolist())
    if isinstance(obj, (set, frozenset)):
        return [to_jsonable(v) for v in sorted(obj, key=repr)]
    if isinstance(obj, Iterable) and not isinstance(obj, (bytes, bytearray)):
        return [to_jsonable(v) for v in obj]
    return str(obj)


def dumps(obj: Any, indent: int | None = None) -> str:
    """Strict JSON text of ``to_jsonable(obj)`` (``allow_nan=False`` as a guard)."""
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False, ensure_ascii=False)
