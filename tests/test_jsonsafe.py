"""The one JSON encoder (``resnet_viz.jsonsafe``) that the CLI, store, exports and lessons use."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from resnet_viz.jsonsafe import dumps, to_jsonable


def test_nan_and_inf_become_null_and_numpy_becomes_plain():
    doc = to_jsonable({"a": (1, float("nan")), "b": np.float32(0.5), "c": math.inf, "d": np.int64(3),
                       "e": np.bool_(True), "f": np.array([[1.0, np.nan]])})
    assert doc == {"a": [1, None], "b": 0.5, "c": None, "d": 3, "e": True, "f": [[1.0, None]]}
    assert type(doc["d"]) is int and type(doc["e"]) is bool


def test_tensors_sets_dataclasses_paths_and_keys():
    @dataclasses.dataclass
    class P:
        x: float
    doc = to_jsonable({1: torch.tensor([1.0, float("inf")]), "s": {"b", "a"}, "p": P(-math.inf),
                       "path": Path("/tmp/x")})
    assert doc == {"1": [1.0, None], "s": ["a", "b"], "p": {"x": None}, "path": "/tmp/x"}


def test_dumps_is_strict_json():
    text = dumps({"loss": [float("nan"), 2.0]})
    assert json.loads(text) == {"loss": [None, 2.0]}
    assert "NaN" not in text
    with pytest.raises(ValueError):       # the guard really is on: raw NaN would be refused
        json.dumps(float("nan"), allow_nan=False)
