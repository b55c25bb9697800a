"""Teacher configuration: defaults, good/bad/unknown values, the example file, spec limits."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resnet_viz.serve.config import (ENV_VAR, ClassroomConfig, check_spec_limits, cpu_cores, load_config,
                               parse_config)
from resnet_viz.spec import ExperimentSpec

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "classroom-config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "classroom.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    cfg, notices = load_config()
    assert notices == [] and cfg == ClassroomConfig()
    assert (cfg.max_depth, cfg.max_width("mlp"), cfg.max_width("cnn"), cfg.max_steps) == (110, 256, 64, 5000)
    assert cfg.max_concurrent_jobs == cpu_cores() and cfg.max_jobs_per_session == 4
    assert cfg.max_upload_bytes == 2 * 1024 * 1024 and cfg.bind_address == "127.0.0.1"
    assert cfg.data_dir == "./data" and cfg.presets_visible == "all" and not cfg.classroom_mode
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.max_depth = 5


def test_good_values(tmp_path):
    cfg, notices = load_config(write(tmp_path, """
max_depth = 56
max_width_cnn = 32
max_concurrent_jobs = 1
presets_visible = ["degradation", "shortcuts"]
classroom_mode = true
locked_lesson = "degradation"
bind_address = "0.0.0.0"
data_dir = "/srv/resnet"
"""))
    assert notices == []
    assert (cfg.max_depth, cfg.max_width_cnn, cfg.max_concurrent_jobs) == (56, 32, 1)
    assert cfg.presets_visible == ("degradation", "shortcuts") and cfg.bind_address == "0.0.0.0"
    assert cfg.preset_visible("degradation") and not cfg.preset_visible("shortcuts")  # locked
    assert cfg.data_dir == "/srv/resnet"


def test_path_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(write(tmp_path, "max_steps = 100\n")))
    assert load_config()[0].max_steps == 100


@pytest.mark.parametrize("line, key", [
    ("max_depth = 0", "max_depth"),
    ("max_depth = 10000", "max_depth"),
    ("max_depth = true", "max_depth"),
    ('max_steps = "lots"', "max_steps"),
    ("max_width_mlp = 2.5", "max_width_mlp"),
    ("max_concurrent_jobs = -1", "max_concurrent_jobs"),
    ("max_upload_bytes = 1000000000000", "max_upload_bytes"),
    ('classroom_mode = "yes"', "classroom_mode"),
    ("presets_visible = 3", "presets_visible"),
    ('presets_visible = ["ok", "../../etc"]', "presets_visible"),
    ('locked_lesson = "a b"', "locked_lesson"),
    ('bind_address = "everywhere"', "bind_address"),
    ("bind_address = 5", "bind_address"),
    ('data_dir = ""', "data_dir"),
])
def test_bad_values_fall_back_with_a_notice(tmp_path, line, key):
    cfg, notices = load_config(write(tmp_path, line + "\nmax_steps = 123\n" * (key != "max_steps")))
    assert getattr(cfg, key) == getattr(ClassroomConfig(), key)
    assert len(notices) == 1 and notices[0].startswith(key) and "using the default" in notices[0]
    assert notices[0].field == key and notices[0].fallback == getattr(ClassroomConfig(), key)
    assert not notices[0].cross_field and len(notices[0]) < 200
    if key != "max_steps":
        assert cfg.max_steps == 123  # the good lines still apply


def test_every_key_has_a_check():
    for f in dataclasses.fields(ClassroomConfig):   # a key without a rule would be dropped silently
        cfg, notices = parse_config({f.name: object()})
        assert [n.field for n in notices] == [f.name] and cfg == ClassroomConfig(), f.name


def test_unknown_keys_are_reported(tmp_path):
    cfg, notices = load_config(write(tmp_path, "max_dpeth = 20\ncolour = 'red'\n"))
    assert cfg == ClassroomConfig()
    assert any("max_dpeth" in n and "did you mean max_depth" in n for n in notices)
    assert any("'colour'" in n for n in notices) and len(notices) == 2
    assert [n.field for n in notices] == ["max_dpeth", "colour"]


def test_unreadable_files(tmp_path):
    cfg, notices = load_config(write(tmp_path, "max_depth = [unclosed\n"))
    assert cfg == ClassroomConfig() and "not valid TOML" in notices[0]
    cfg, notices = load_config(tmp_path / "typo.toml")
    assert cfg == ClassroomConfig() and "not found" in notices[0]


def test_notices_keep_the_files_order_and_shared_wording(tmp_path):
    cfg, notices = load_config(write(tmp_path, 'max_steps = 0\nbogus = 1\nmax_depth = "deep"\n'))
    assert [n.field for n in notices] == ["max_steps", "bogus", "max_depth"]
    assert notices[0] == "max_steps must be between 1 and 1000000 (got 0); using the default 5000"
    assert notices[2] == "max_depth must be a whole number (got 'deep'); using the default 110"


def test_locked_lesson_without_classroom_mode(tmp_path):
    cfg, notices = load_config(write(tmp_path, 'locked_lesson = "degradation"\n'))
    assert "only with classroom_mode" in notices[0] and cfg.preset_visible("anything")
    assert notices[0].field == "locked_lesson" and notices[0].cross_field


def test_the_example_file_documents_every_key_and_loads_cleanly():
    cfg, notices = load_config(EXAMPLE)
    assert notices == [] and cfg == ClassroomConfig()
    text = EXAMPLE.read_text()
    for f in dataclasses.fields(ClassroomConfig):
        assert re.search(rf"^#? ?{f.name} = ", text, re.M), f.name


def test_spec_limits_give_sentences_for_students():
    cfg = ClassroomConfig()
    assert check_spec_limits(ExperimentSpec(dataset="moons", depth=8, width=16), cfg) == []
    deep = ExperimentSpec(dataset="moons", depth=200, width=512, steps=9000)
    assert check_spec_limits(deep, cfg) == [
        "depth 200 is above this classroom's limit of 110",
        "width 512 is above this classroom's limit of 256 for the MLP",
        "steps 9000 is above this classroom's limit of 5000",
    ]
    wide_cnn = ExperimentSpec(model="cnn", dataset="digits", depth=20, width=128)
    assert check_spec_limits(wide_cnn, cfg) == ["width 128 is above this classroom's limit of 64 for the CNN"]


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                    st.lists(st.text(max_size=10), max_size=3))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([f.name for f in dataclasses.fields(ClassroomConfig)]
                                       + ["junk"]), _VALUES, max_size=6))
def test_parsing_never_raises(raw):
    cfg, notices = parse_config(raw)
    assert isinstance(cfg, ClassroomConfig) and all(isinstance(n, str) for n in notices)
    assert all(n.field in raw for n in notices)
    assert 1 <= cfg.max_depth <= 1000 and cfg.max_concurrent_jobs >= 1
