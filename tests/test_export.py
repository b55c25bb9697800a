"""CSV / JSON downloads parse back; NaN and numpy/torch values handled."""
from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import torch

from resnet_viz.export import (attribution_map_rows, attribution_rows, grid_rows, lag1_rows, probe_rows, probes_to_csv,
                               rows_to_csv, runs_to_csv, shatter_rows, to_json)
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


def test_rows_to_csv_union_header_in_first_seen_order():
    text = rows_to_csv([{"b": 1, "a": 2}, {"c": 3, "a": 4}, {}, {2: "two"}])
    assert text.splitlines()[0] == "b,a,c,2"
    out = rows(text)
    assert out[0] == {"b": "1", "a": "2", "c": "", "2": ""}
    assert out[1] == {"b": "", "a": "4", "c": "3", "2": ""} and set(out[2].values()) == {""}
    assert out[3]["2"] == "two"
    assert rows_to_csv([]) == "\n" and rows_to_csv(iter([{"x": 1}])) == "x\n1\n"


def test_rows_to_csv_cells_non_finite_numpy_nested_and_formulas():
    out = rows(rows_to_csv([{"nan": float("nan"), "inf": -math.inf, "np": np.float32(0.5), "t": torch.tensor(3),
                             "none": None, "flag": True, "list": [1, float("nan")], "map": {"k": np.int64(2)},
                             "arr": np.array([1.5, 2.0])}]))[0]
    assert out["nan"] == "" and out["inf"] == "" and out["none"] == ""
    assert float(out["np"]) == 0.5 and out["t"] == "3" and out["flag"] == "True"
    assert json.loads(out["list"]) == [1, None] and json.loads(out["map"]) == {"k": 2}
    assert json.loads(out["arr"]) == [1.5, 2.0]
    guarded = rows(rows_to_csv([{"=cmd": "=HYPERLINK(1)", "b": "+1", "c": "-x", "d": "@SUM", "e": "ok, \"quoted\""}]))[0]
    assert guarded == {"'=cmd": "'=HYPERLINK(1)", "b": "'+1", "c": "'-x", "d": "'@SUM", "e": 'ok, "quoted"'}
    assert rows(rows_to_csv([{"n": -1.5}]))[0]["n"] == "-1.5"           # numbers are not text: no quote


def test_row_helpers_flatten_the_pages_results():
    reports = [{"x": [0.0, 0.5], "gradients": [1.0, -2.0], "autocorr": [1.0, 0.3]},
               {"x": [0.0, 0.5], "gradients": [0.1, 0.2], "autocorr": [1.0, 0.9]}]
    out = rows(rows_to_csv(shatter_rows(reports)))
    assert list(out[0]) == ["net", "x", "df_dx", "lag", "autocorrelation"] and len(out) == 8
    assert out[1] == {"net": "plain", "x": "0.5", "df_dx": "-2.0", "lag": "", "autocorrelation": ""}
    assert out[-1]["net"] == "residual" and out[-1]["lag"] == "1" and out[-1]["autocorrelation"] == "0.9"

    sweep = {"depths": [1, 4], "seeds": [0, 1], "curves": [{"kind": "none", "beta": 1.0, "lag1": [[0.9, 0.8], [0.1, 0.2]],
                                                            "mean": [0.85, 0.15], "std": [0.05, 0.05]}],
             "theory": [{"values": [0.85, 0.1]}]}
    lag = lag1_rows(sweep)
    assert lag[1] == {"kind": "none", "beta": 1.0, "depth": 4, "mean_lag1": 0.15, "std_lag1": 0.05,
                      "theory": 0.1, "seed 0": 0.1, "seed 1": 0.2}

    res = {"target": 3, "blocks": {"none": [0.5, 0.25], "identity": [1.0]}, "delta": {"none": 0.01},
           "prediction": {"none": (3, 0.9), "identity": (1, 0.6)},
           "saliency": {"none": np.ones((1, 2, 3))}, "integrated": {"none": torch.zeros(2, 3)}}
    blocks = attribution_rows(res)
    assert [(r["net"], r["block"]) for r in blocks] == [("none", 1), ("none", 2), ("identity", 1)]
    assert blocks[0]["predicted_class"] == 3 and blocks[2]["ig_completeness_gap"] is None
    maps = attribution_map_rows(res)
    assert len(maps) == 12 and maps[5] == {"net": "none", "method": "saliency", "channel": 0, "row": 1, "col": 2,
                                           "value": 1.0}

    run = snap(n=2, layers=4)
    probes = probe_rows([run])
    assert {r["quantity"] for r in probes} == {"response_std", "branch_ratio"}
    assert probes[0]["run"] == "resnet-4 (identity)" and probes[0]["name"] == run["response_names"][0]

    grid = grid_rows({"plain": {"xx": [0.0, 1.0], "yy": [5.0], "prob": [[0.2, 0.8]]}})
    assert grid == [{"net": "plain", "x1": 0.0, "x2": 5.0, "p_class1": 0.2},
                    {"net": "plain", "x1": 1.0, "x2": 5.0, "p_class1": 0.8}]
