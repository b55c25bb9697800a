"""The benchmarks stay runnable and readable: they import, their command lines answer
``--help``, no function is long, and process readings go through psutil, not /proc.

The benches themselves are measurements, not tests (``bench/README.md``); running one takes
minutes and a quiet machine, so nothing here starts a server.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
SOURCES = sorted([*BENCH.glob("*.py"), *BENCH.glob("classroom/*.py")])
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 300


@pytest.fixture()
def classroom(monkeypatch):
    pytest.importorskip("psutil")
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("classroom")


def test_bench_sources_are_short():
    long = []
    for path in SOURCES:
        text = path.read_text()
        if path.parent.name == "classroom" and len(text.splitlines()) > MAX_MODULE_LINES:
            long.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines")
    assert long == []


def test_no_hand_written_proc_readers():
    assert [str(p.relative_to(ROOT)) for p in SOURCES if "/proc/" in p.read_text()] == []


@pytest.mark.parametrize("module", ["constants", "processes", "server", "inside", "browser_client",
                                    "ws_client", "phase", "summary", "report", "cli"])
def test_classroom_modules_import(classroom, module):
    importlib.import_module(f"classroom.{module}")


def test_engine_paths_the_benches_use_exist():
    """The bench scripts import the engine at the top; the server side wraps these names."""
    for script in ("bench_overhead", "bench_shatter"):
        spec = importlib.util.spec_from_file_location(f"_{script}", BENCH / f"{script}.py")
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    from resnet_viz.serve import services
    from resnet_viz.serve.workers import ProcessTrainer
    from resnet_viz.train.trainer import Trainer
    from resnet_viz.ui import live
    assert callable(services.build_services) and live.poll.__defaults__ is not None
    assert all(hasattr(cls, "train_steps") for cls in (Trainer, ProcessTrainer))


def test_classroom_help():
    pytest.importorskip("psutil")
    out = subprocess.run([sys.executable, str(BENCH / "bench_classroom.py"), "--help"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    for flag in ("--sessions", "--others", "--clients", "--settle", "--waves", "--json"):
        assert flag in out.stdout


def test_process_readings(classroom):
    from classroom.processes import cpu_s, loadavg, n_threads, rss_by_process, rss_mb, tree

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        procs = tree(os.getpid())
        assert child.pid in [p.pid for p in procs]
        assert rss_mb(procs) > rss_mb(procs[:1]) > 1
        assert cpu_s(procs) > 0 and n_threads(os.getpid()) >= 1
        assert set(rss_by_process(os.getpid())) >= {"server", f"child-{child.pid}"}
    finally:
        child.kill()
        child.wait()
    assert tree(child.pid) == [] and n_threads(child.pid) == 0
    assert len(loadavg().split()) == 3


def test_classroom_numbers(classroom):
    from classroom.cli import Plan, parse_args
    from classroom.report import passed, targets
    from classroom.summary import pct

    assert pct([], 0.5) is None and pct([1.0, 2.0, 3.0], 0.5) == 2.0 and pct([1.0, 3.0], 0.95) == 2.9
    plan = Plan(parse_args(["--sessions", "2", "--others", "1", "--steps", "50"]))
    urls = plan.class_urls("http://h", 100)
    assert urls[0] == urls[1] == "http://h/train?dataset=spirals&depth=8&width=32&steps=50&seed=100"
    assert "dataset=moons" in urls[2] and urls[2].endswith("seed=101")
    compute = {"steps": 200, "jobs_built": 2, "cpu_s": 1.0}
    out = {"single": {"compute": compute, "result_p50_s": 2.0},
           "class": {"compute_shared": compute, "shared": {"result_p95_s": 3.0}},
           "rss_baseline_mb": 1000.0, "rss_after_leave_mb": 1100.0, "rss_after_settle_mb": 1040.0}
    out["targets"] = targets(out)
    assert out["targets"]["compute_ratio"] == 1.0 and out["targets"]["p95_ratio"] == 1.5
    assert out["targets"]["rss_growth_after_leave_mb"] == 40.0 and passed(out)
