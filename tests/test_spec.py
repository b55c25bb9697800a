"""Spec: validation messages, stable hashing, URL round trip, fallbacks for bad input."""
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resnet_viz.spec import (ExperimentSpec, SpecError, n_blocks, parse_spec, spec_from_json,
                             valid_cnn_depths)


def test_defaults_valid_and_hashable():
    spec = ExperimentSpec()
    assert hash(spec) == hash(ExperimentSpec())
    assert {spec: 1}[ExperimentSpec()] == 1


def test_hash_is_stable_across_processes():
    code = "from resnet_viz.spec import ExperimentSpec; print(ExperimentSpec(depth=56).spec_hash())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ExperimentSpec(depth=56).spec_hash()
    assert ExperimentSpec(depth=56).spec_hash() != ExperimentSpec(depth=20).spec_hash()


@pytest.mark.parametrize("kwargs, words", [
    ({"depth": 0}, "depth must be between"),
    ({"lr": -1.0}, "lr must be between"),
    ({"width": 10**6}, "width must be between"),
    ({"batch_size": 0}, "batch_size"),
    ({"model": "cnn", "depth": 21}, r"6n\+2"),
    ({"model": "cnn", "block": "bottleneck", "depth": 21}, r"9n\+2"),
    ({"model": "cnn", "dataset": "moons"}, "image dataset"),
    ({"shortcut": "magic"}, "shortcut must be one of"),
    ({"shortcut_mask": "10"}, "one digit per block"),
    ({"lr": float("nan")}, "finite"),
])
def test_invalid_specs_raise_readable_errors(kwargs, words):
    with pytest.raises(SpecError, match=words):
        ExperimentSpec(**kwargs)


def test_query_round_trip():
    spec = ExperimentSpec(model="cnn", depth=56, width=16, shortcut="projection", lr=0.05,
                          shortcut_mask="1" * 27, seed=7, residual_scale=0.25)
    back, notices = ExperimentSpec.from_query_params(spec.to_query_params())
    assert back == spec and notices == []


def test_unknown_keys_ignored_bad_values_reported():
    spec, notices = parse_spec({"depth": "abc", "lr": "-1", "utm_source": "x", "seed": "3"})
    assert spec.depth == ExperimentSpec().depth and spec.lr == ExperimentSpec().lr and spec.seed == 3
    assert len(notices) == 2 and all("default" in n for n in notices)


def test_cross_field_problem_resets_one_field():
    spec, notices = parse_spec({"model": "cnn", "depth": "21", "width": "16"})
    assert spec.model == "cnn" and spec.width == 16 and spec.depth == ExperimentSpec().depth
    assert any("6n+2" in n for n in notices)


def test_list_values_from_query_params_take_last():
    spec, notices = parse_spec({"depth": ["8", "14"]})
    assert spec.depth == 14 and not notices


def test_json_round_trip_and_garbage():
    spec = ExperimentSpec(depth=8, seed=4)
    assert spec_from_json(__import__("json").dumps(spec.to_dict()))[0] == spec
    assert spec_from_json("{not json")[1]
    assert spec_from_json("[1, 2]")[1]


def test_block_counting():
    assert n_blocks("cnn", 20) == 9 and n_blocks("cnn", 110) == 54
    assert n_blocks("cnn", 29, "bottleneck") == 9
    assert n_blocks("mlp", 20, mlp_block_layers=2) == 10
    assert valid_cnn_depths()[:3] == [8, 14, 20]


def test_mask_and_twins():
    spec = ExperimentSpec(depth=4, shortcut_mask="1010")
    assert [spec.block_has_shortcut(i) for i in range(4)] == [True, False, True, False]
    assert spec.is_residual and not spec.plain_twin().is_residual


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["depth", "width", "lr", "model", "dataset", "shortcut",
                                        "shortcut_mask", "block", "mlp_block_layers", "seed",
                                        "batch_size", "noise", "nonsense"]),
                       st.one_of(st.text(max_size=12), st.integers(-10**6, 10**6),
                                 st.floats(allow_nan=True, allow_infinity=True))))
def test_parser_never_raises_and_always_valid(params):
    spec, notices = parse_spec(params)
    assert isinstance(spec, ExperimentSpec)
    assert all(isinstance(n, str) for n in notices)
