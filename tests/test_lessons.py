"""Lessons: the registry is complete, every lesson runs end to end at a tiny scale, the
runner's document is strict JSON and equals what the page builds from queued runs, and the
CLI's exit codes. The claims themselves are tested in test_lesson_claims.py."""
from __future__ import annotations

import json
import subprocess
import sys

import plotly.graph_objects as go
import pytest
import torch

from resnet_viz.lessons import Lesson, get, names
from resnet_viz.cli.main import main as cli_main
from resnet_viz.lessons.base import Param, unique
from resnet_viz.lessons.runner import detached, finish, run_lesson, torch_threads
from resnet_viz.spec import ExperimentSpec
from resnet_viz.train.trainer import run_training

EXPECTED = ("degradation", "identity", "responses", "gradient_flow", "shattered", "singularities",
            "highway", "ensembles", "landscape", "shortcuts")

# Seconds, not science: the smallest settings that exercise every code path.
TINY = {
    "degradation": {"depths": (2, 3), "seeds": (0,), "steps": 10},
    "identity": {"shallow_depth": 2, "extra_blocks": 2, "seeds": (0,), "steps": 10},
    "responses": {"depths": (2,), "seeds": (0,), "steps": 10},
    "gradient_flow": {"depth": 3, "seeds": (0,), "steps": 2},
    "shattered": {"depths": (1, 2), "betas": (1.0, 0.5), "seeds": (0, 1), "width": 8, "points": 32,
                  "plain_depth": 2},
    "singularities": {"depth": 2, "width": 4, "seeds": (0,), "steps": 10, "examples": 32},
    "highway": {"depth": 2, "seeds": (0,), "steps": 10, "checkpoints": (0, 5)},
    "ensembles": {"depth": 3, "seeds": (0,), "steps": 10, "max_deleted": 2, "path_samples": 1},
    "landscape": {"depth": 2, "seeds": (0,), "steps": 10, "grid": 5, "slice_points": 5},
    "shortcuts": {"depth": 8, "width": 4, "seeds": (0,), "steps": 3},
}


def test_registry_has_the_ten_lessons_in_order():
    assert names() == list(EXPECTED)
    assert set(TINY) == set(EXPECTED)


@pytest.mark.parametrize("name", EXPECTED)
def test_lesson_is_complete(name):
    lesson = get(name)
    assert isinstance(lesson, Lesson) and lesson.name == name
    assert lesson.title and len(lesson.text) > 200 and lesson.papers and lesson.paper_figures
    pred = lesson.prediction
    assert pred.question.endswith("?") and len(pred.options) >= 2
    assert 0 <= pred.expected < len(pred.options)
    assert all(isinstance(p, Param) and p.help for p in lesson.params)
    specs = lesson.specs(lesson.defaults())
    assert all(isinstance(s, ExperimentSpec) for s in specs)
    assert name == "shattered" or specs, "every lesson but the init-only one trains something"


@pytest.mark.parametrize("name", EXPECTED)
def test_defaults_are_estimated_within_about_a_minute(name):
    # Issue #4: each lesson runs in about a minute at its defaults on a 2-core CPU.
    lesson = get(name)
    assert 0 < lesson.estimate_s(lesson.defaults()) <= 75


def test_heavier_settings_estimate_more():
    lesson = get("landscape")
    assert lesson.estimate_s(lesson.resolve({"grid": 41})) > 2 * lesson.estimate_s(lesson.defaults())


def test_resolve_parses_strings_and_rejects_bad_settings():
    lesson = get("degradation")
    p = lesson.resolve({"depths": "4, 8", "seeds": "3", "steps": "20"})
    assert p["depths"] == (4, 8) and p["seeds"] == (3,) and p["steps"] == 20
    assert lesson.resolve({"depths": [6, 7]})["depths"] == (6, 7)
    for bad, word in (({"bogus": 1}, "no setting"), ({"steps": "abc"}, "not a number"),
                      ({"steps": 2.5}, "whole"), ({"depths": "4,2000"}, "between"),
                      ({"depths": ""}, "1 to"), ({"steps": "nan"}, "number")):
        with pytest.raises(ValueError, match=word):
            lesson.resolve(bad)
    with pytest.raises(ValueError, match="one of"):
        get("shattered").resolve({"norm": "layer"})
    with pytest.raises(ValueError, match="no lesson"):
        get("nope")


def test_settings_are_checked_by_the_spec_s_validation_layer():
    from resnet_viz.spec import parse_spec

    depth = Param("depth", 20, "hidden layers", 1, 1000)
    for raw in ("abc", "2.5", "0", "1e308"):
        with pytest.raises(ValueError) as err:
            depth.parse(raw)
        assert str(err.value) == parse_spec({"depth": raw})[1][0].message   # one wording for both
    assert depth.parse(" 1e1 ") == 10 and Param("lr", 0.1, "", 1e-4, 1.0).parse("0.5") == 0.5
    assert Param("seeds", (0, 1), "", 0, 9, 3).parse(" 4, 5 ,") == (4, 5)



@pytest.mark.parametrize("name", EXPECTED)
def test_runs_end_to_end_and_is_strict_json(name):
    ticks: list[float] = []
    doc = run_lesson(name, TINY[name], progress=lambda f, msg: ticks.append(f))
    text = json.dumps(doc, allow_nan=False)   # strict JSON: no NaN / inf anywhere
    assert json.loads(text) == doc
    assert set(doc) >= {"lesson", "params", "result", "claim", "outcome", "runs", "timing"}
    assert set(doc["claim"]) >= {"holds", "text", "ours", "paper", "note"}
    assert isinstance(doc["claim"]["holds"], bool) and doc["claim"]["ours"]
    assert 0 <= doc["outcome"] < len(get(name).prediction.options)
    assert len(doc["runs"]) == len(unique(get(name).specs(get(name).resolve(TINY[name]))))
    assert ticks and ticks[-1] == 1.0 and all(0 <= a <= b <= 1 for a, b in zip(ticks, ticks[1:]))
    figs = get(name).figures(doc["result"])
    assert figs and all(isinstance(f, go.Figure) for f in figs)


def test_page_path_gives_the_same_document():
    # The page trains through the job queue and calls finish(); the models reach it through
    # Job.model_copy (a bytes round trip), which ``detached`` reproduces.
    lesson = get("ensembles")
    params = lesson.resolve(TINY["ensembles"])
    runs = {}
    with torch_threads(1):   # as the queue's workers and run_lesson
        for spec in unique(lesson.specs(params)):
            snap, trainer = run_training(spec)
            runs[spec.spec_hash()] = (snap, detached(spec, trainer))
    page = finish(lesson, params, runs)
    before = torch.get_num_threads()
    cli = run_lesson("ensembles", TINY["ensembles"])
    assert torch.get_num_threads() == before
    for key in ("result", "claim", "outcome", "params"):
        assert page[key] == cli[key], key

    def untimed(runs):   # the same runs, trained twice: only the speed readout differs
        return {k: {**r, "final": {**r["final"], "steps_per_s": None}} for k, r in runs.items()}
    assert untimed(page["runs"]) == untimed(cli["runs"])


# --- CLI ---------------------------------------------------------------------------

def test_cli_list_and_exit_codes(tmp_path, capsys):
    assert cli_main(["lesson", "--list"]) == 0
    assert "degradation" in capsys.readouterr().out
    assert cli_main(["lesson"]) == 2
    assert cli_main(["lesson", "nope"]) == 2
    assert cli_main(["lesson", "degradation", "--param", "depths=x"]) == 2
    assert cli_main(["lesson", "degradation", "--param", "bogus=1"]) == 2
    assert cli_main(["lesson", "degradation", "--param", "noequals"]) == 2
    assert cli_main(["lesson", "degradation", "--json", str(tmp_path / "no" / "out.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no setting" in err


def test_cli_writes_the_document(tmp_path, capsys):
    out = tmp_path / "doc.json"
    args = ["degradation", "--quiet", "--json", str(out), "-p", "depths=2,3", "-p", "seeds=0",
            "-p", "steps=10"]
    assert cli_main(["lesson", *args]) == 0
    doc = json.loads(out.read_text())
    assert doc["lesson"] == "degradation" and doc["params"]["depths"] == [2, 3]
    assert "claim" in capsys.readouterr().out


def test_registered_in_the_main_cli(capsys):
    from resnet_viz.cli.main import COMMANDS
    assert "lesson" in COMMANDS
    assert cli_main(["lesson", "--list"]) == 0
    assert cli_main(["lesson", "degradation", "-p", "steps=0"]) == 2


def test_lessons_never_import_streamlit_and_the_cli_stays_light():
    code = ("import sys; sys.modules['streamlit'] = None; import resnet_viz.cli.main; "
            "assert 'torch' not in sys.modules, 'the CLI parser must not load torch'; "
            "import resnet_viz.lessons.runner, resnet_viz.ui.lesson_runs; "
            "from resnet_viz.lessons import LESSONS; assert len(LESSONS) == 10")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_lesson_run_through_the_queue_respects_the_session_limit():
    import time

    from resnet_viz.serve.queue import JobQueue
    from resnet_viz.ui.lesson_runs import Analyses, LessonRun

    lesson = get("degradation")
    params = lesson.resolve(TINY["degradation"])           # 4 runs, 2 allowed at once
    with JobQueue(max_concurrent=1, max_jobs_per_session=2, torch_threads=1) as queue:
        run = LessonRun(lesson, params, "student")
        run.pump(queue)
        assert len(run.submitted) == 2
        end = time.monotonic() + 600
        while not (status := run.status(queue, None))["trained"]:
            assert time.monotonic() < end and not status["problems"], status
            run.pump(queue)
            time.sleep(0.05)
        assert status["fraction"] == 1.0 and status["done"] == 4 and len(run.submitted) == 4
        analyses = Analyses()
        task = analyses.start(run, queue, None)
        assert analyses.start(run, queue, None) is task     # a second student joins it
        while task.state == "analysing":
            assert time.monotonic() < end
            time.sleep(0.05)
        assert task.state == "done", task.error
        assert task.doc["result"] == run_lesson("degradation", TINY["degradation"])["result"]
        run.release(queue)


def fake_run(key: str):
    """What ``Analyses`` reads of a ``LessonRun``: its key, lesson, settings and trained runs."""
    from types import SimpleNamespace
    return SimpleNamespace(key=key, lesson=get("degradation"), params={}, runs=lambda backend, store: {})


def test_analyses_run_one_at_a_time_and_stop_at_the_next_tick(monkeypatch):
    """A pool of one thread: the second analysis waits for the first. Shutting the pool down
    ends the running one at its next progress tick and drops the waiting one; no thread stays."""
    import threading
    import time

    from resnet_viz.ui import lesson_runs

    gate, seen = threading.Event(), []

    def finish_slowly(lesson, params, runs, progress):
        seen.append(threading.current_thread().name)
        while True:              # an analysis that ticks until it is stopped
            progress(0.5, "analysing")
            if gate.wait(0.01):
                return {"result": len(seen)}

    monkeypatch.setattr(lesson_runs, "finish", finish_slowly)
    analyses = lesson_runs.Analyses(concurrent=1)
    first, second = analyses.start(fake_run("a"), None, None), analyses.start(fake_run("b"), None, None)
    end = time.monotonic() + 300
    while first.message != "analysing":
        assert time.monotonic() < end
        time.sleep(0.01)
    assert second.message == "starting" and seen == ["resnet-viz-lesson_0"]   # queued behind it
    gate.set()
    while second.state != "done":
        assert time.monotonic() < end
        time.sleep(0.01)
    assert first.doc == {"result": 1} and second.doc == {"result": 2}
    gate.clear()
    running, queued = analyses.start(fake_run("c"), None, None), analyses.start(fake_run("d"), None, None)
    while running.message != "analysing":
        assert time.monotonic() < end
        time.sleep(0.01)
    analyses.shutdown()
    assert (running.state, queued.state) == ("failed", "failed") and "stopping" in running.error
    assert not [t for t in threading.enumerate() if t.name.startswith("resnet-viz-lesson")]
    assert analyses.start(fake_run("e"), None, None).state == "failed"   # no new work after it
