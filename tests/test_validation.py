"""The shared validation layer: readers, checks, located problems, notices, short echoes."""
from __future__ import annotations

import ast
import json
import pickle
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from resnet_viz.validation import (Notice, Problem, between, check, clip, fail, first_message, from_text, items,
                                   one_of, optional_model, plain, problems, problems_in, read, typed)

ROOT = Path(__file__).resolve().parents[1]

# A small schema in the style of the spec's: a reader per kind, then checks.
Form = optional_model("Form", {
    "depth": Annotated[int, from_text("depth", int), between("depth", 1, 100)],
    "lr": Annotated[float, from_text("lr", float), between("lr", 1e-6, 10.0)],
    "model": Annotated[str, from_text("model", str), one_of("model", ("mlp", "cnn"))],
    # its message names another field: the problem must still be located by loc, not words
    "mask": Annotated[str, from_text("mask", str), check("mask", lambda m: m != "x", "not be x, unlike depth")],
})
FALLBACKS = {"depth": 20, "lr": 0.1, "model": "mlp", "mask": ""}


def test_the_layer_imports_only_the_stdlib_and_pydantic():
    tree = ast.parse((ROOT / "resnet_viz" / "validation.py").read_text())
    roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    roots |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module}
    assert roots - set(sys.stdlib_module_names) - {"__future__"} == {"pydantic", "pydantic_core"}


def test_read_keeps_the_good_fields_and_locates_each_bad_one():
    values, found = read(Form, {"mask": "x", "depth": "abc", "lr": "0.5", "model": "rnn", "utm": "?"}, FALLBACKS)
    assert values == {"lr": 0.5}
    assert [p.field for p in found] == ["mask", "depth", "model"]        # the input's order
    assert [p.fallback for p in found] == ["", 20, "mlp"]
    assert found[0].message == "mask must not be x, unlike depth (got 'x')"
    assert found[1].message == "depth='abc' is not a valid int (not a number)"
    assert found[2].message == "model must be one of mlp, cnn (got 'rnn')"
    assert not any(p.cross_field for p in found)


def test_read_of_good_input_types_it():
    assert read(Form, {"depth": " 20 ", "lr": "1e-1", "model": "cnn"}, FALLBACKS) == (
        {"depth": 20, "lr": 0.1, "model": "cnn"}, [])
    assert read(Form, {}, FALLBACKS) == ({}, [])


@pytest.mark.parametrize("text, value", [(" 20 ", 20), ("1e1", 10), ("20.0", 20), (7, 7), (7.0, 7)])
def test_from_text_reads_numbers_as_people_type_them(text, value):
    got = TypeAdapter(Annotated[int, from_text("n", int)]).validate_python(text)
    assert got == value and type(got) is int


@pytest.mark.parametrize("kind, text, words", [
    (int, "abc", "n='abc' is not a valid int (not a number)"),
    (int, "2.5", "n='2.5' is not a valid int (not a whole number)"),
    (int, "nan", "n='nan' is not a valid int (not a finite number)"),
    (float, "inf", "n='inf' is not a valid float (not a finite number)"),
    (float, "", "n='' is not a valid float (not a number)"),
])
def test_from_text_says_why_a_value_is_not_a_number(kind, text, words):
    with pytest.raises(ValidationError) as err:
        TypeAdapter(Annotated[kind, from_text("n", kind)]).validate_python(text)
    assert first_message(err.value) == words


def test_typed_values_are_not_read_from_text():
    whole = TypeAdapter(Annotated[int, typed("n", int)])
    assert whole.validate_python(20.0) == 20 and type(whole.validate_python(20.0)) is int
    for bad, words in ((True, "whole number"), ("20", "whole number"), (2.5, "whole number"),
                       (float("nan"), "whole number"), (None, "whole number")):
        with pytest.raises(ValidationError, match=words):
            whole.validate_python(bad)
    finite = TypeAdapter(Annotated[float, typed("x", float)])
    assert finite.validate_python(1) == 1
    with pytest.raises(ValidationError, match="x must be a finite number"):
        finite.validate_python(float("inf"))
    assert whole.validate_python(10**400) == 10**400        # no OverflowError from float()


def test_between_with_one_or_two_bounds():
    assert problems_in(optional_model("B", {"a": Annotated[int, typed("a", int), between("a", 1, None)],
                                            "b": Annotated[int, typed("b", int), between("b", None, 5)],
                                            "c": Annotated[float, typed("c", float), between("c", 0.0, 1e-4)]}),
                       {"a": 0, "b": 9, "c": 1}) == [
        Problem("a", "a must be at least 1 (got 0)"),
        Problem("b", "b must be at most 5 (got 9)"),
        Problem("c", "c must be between 0 and 0.0001 (got 1)")]


def test_items_split_and_count():
    numbers = TypeAdapter(Annotated[tuple[Annotated[int, from_text("n", int)], ...], items("n", 3)])
    assert numbers.validate_python("4, 8,") == (4, 8)
    assert numbers.validate_python([6, "7"]) == (6, 7)
    assert numbers.validate_python(5) == (5,)
    for bad, words in (("", "n needs 1 to 3 values (got 0)"), ("1,2,3,4", "n needs 1 to 3 values (got 4)"),
                       ("1,x", "n='x' is not a valid int")):
        with pytest.raises(ValidationError) as err:
            numbers.validate_python(bad)
        assert first_message(err.value).startswith(words)


@pytest.mark.parametrize("value, shown", [
    ("abc", "'abc'"),
    ("x" * 100, repr("x" * 40)),
    (20.0, "20"),
    (1e-6, "1e-06"),
    (int(1e308), "1e+308"),                 # what "?steps=1e308" reads as: 309 digits
    (10**400, "1" + "0" * 36 + "..."),      # beyond any float
    (True, "True"),
    ([1] * 50, repr([1] * 50)[:37] + "..."),
])
def test_clip_keeps_echoes_short(value, shown):
    assert clip(value) == shown and len(clip(value)) <= 42


def test_plain_numbers():
    assert [plain(v) for v in (20.0, 0.25, 1e-4, 1e20, 7, "mlp")] == ["20", "0.25", "0.0001", "1e+20", "7", "mlp"]


def test_notice_is_a_string_that_carries_its_problem():
    problem = Problem("depth", "depth must be between 1 and 100 (got 0)", 20)
    notice = Notice(problem, f"{problem.message}; using the default 20")
    assert isinstance(notice, str) and notice.endswith("using the default 20")
    assert (notice.field, notice.message, notice.fallback, notice.cross_field) == (
        "depth", problem.message, 20, False)
    back = pickle.loads(pickle.dumps(notice))
    assert back == notice and back.problem == problem
    assert json.loads(json.dumps([notice])) == [str(notice)]
    assert f"Link setting ignored: {notice}." == f"Link setting ignored: {str(notice)}."


def test_cross_field_problems_name_what_a_reset_may_fix():
    clash = Problem("depth", "a basic CNN needs depth = 6n+2", related=("model",), cross_field=True)
    assert clash.involves("depth") and clash.involves("model") and not clash.involves("width")


def test_pydantics_own_errors_are_located_too():
    Strict = optional_model("Strict", {"n": int})
    with pytest.raises(ValidationError) as err:
        Strict.model_validate({"n": "lots"})
    [problem] = problems(err.value, {"n": 3})
    assert problem.field == "n" and problem.message.startswith("n: ") and problem.fallback == 3


def test_fail_raises_the_sentence_as_is():
    adapter = TypeAdapter(Annotated[Any, check("x", lambda v: False, "be {odd} braces")])
    with pytest.raises(ValidationError) as err:
        adapter.validate_python(1)
    assert first_message(err.value) == "x must be {odd} braces (got 1)"
    with pytest.raises(Exception, match="plain"):
        fail("plain")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([*FALLBACKS, "junk"]),
                       st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.none(), st.booleans(),
                                 st.lists(st.integers(), max_size=3)), max_size=5))
def test_read_never_raises_and_reports_every_bad_field_once(raw):
    values, found = read(Form, raw, FALLBACKS)
    assert set(values) | {p.field for p in found} == set(raw) - {"junk"}
    assert not set(values) & {p.field for p in found}
    assert all(len(p.message) < 200 for p in found)
