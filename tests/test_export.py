"""CSV / JSON downloads parse back; NaN and numpy/torch values handled."""
from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import torch

from resnet_viz.export import probes_to_csv, runs_to_csv, to_json
from resnet_viz.spec import ExperimentSpec

from test_figures_training import snap


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_runs_to_csv_round_trip():
    bad = snap("none", n=2, status="diverged")
    bad["history"]["train_loss"] = [float("nan"), np.float32(0.5)]
    out = rows(runs_to_csv([snap("identity", n=3), bad, {}]))
    assert len(out) == 5
    assert {r["run"] for r in out} == {"resnet-4 (identity)", "plain-4"}
    assert out[0]["spec_hash"] == "hidentity40" and out[0]["depth"] == "4" and out[0]["step"] == "0"
    assert float(out[1]["train_loss"]) == 0.5
    assert out[3]["train_loss"] == "" and float(out[4]["train_loss"]) == 0.5


def test_csv_guards_against_formulas():
    out = rows(runs_to_csv([snap(label="=HYPERLINK(1)", n=1)]))
    assert out[0]["run"] == "'=HYPERLINK(1)"


def test_probes_to_csv_long_format():
    out = rows(probes_to_csv(snap(n=3, layers=4)))
    assert len(out) == 12 and list(out[0]) == ["step", "layer_index", "layer", "grad_norm"]
    assert out[5] == {"step": "10", "layer_index": "1", "layer": "l1", "grad_norm": "0.2"}
    assert rows(probes_to_csv({})) == []


def test_to_json_handles_numpy_torch_nan():
    obj = {"a": np.float32(1.5), "b": torch.tensor(2.0), "c": [float("nan"), math.inf], "d": np.arange(3),
           "e": (1, np.int64(2)), "f": ExperimentSpec(depth=2), "g": {3, 1}, "h": torch.ones(2)}
    back = json.loads(to_json(obj))
    assert back["a"] == 1.5 and back["b"] == 2.0 and back["c"] == [None, None] and back["d"] == [0, 1, 2]
    assert back["e"] == [1, 2] and back["f"]["depth"] == 2 and back["g"] == [1, 3] and back["h"] == [1.0, 1.0]
    assert "NaN" not in to_json(float("nan"))
