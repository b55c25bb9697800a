"""A classroom on one server (issue 5): many sessions come and go through the real job queue
and session reaper, and threads, trainers and memory come back; histories and figures stay
small however long a run is; a diverging run ends itself without touching anyone else's;
identical specs reached by different routes give identical runs.

tests/test_jobs.py already covers the queue's mechanics (sharing, limits, pause/step, a
simple come-and-go, divergence, determinism across two queues); these tests drive it the way
a class does, with the reaper, the app and many sessions at once.
"""
from __future__ import annotations

import ctypes
import gc
import json
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest

from app_helpers import TINY as TINY_PARAMS, app_env, no_exception, open_app, services  # noqa: F401
from resnet_viz.cli import main as cli
from resnet_viz.figures.runs import MAX_POINTS
from resnet_viz.figures.responses import branch_ratio, response_std
from resnet_viz.figures.training import (MAX_CELLS, grad_norm_by_depth, grad_norm_heatmap,
                                         loss_curves)
from resnet_viz.serve.reaper import SessionReaper
from resnet_viz.train.history import MAX_POINTS as HISTORY_POINTS
from resnet_viz.serve.queue import JobQueue
from resnet_viz.spec import ExperimentSpec, parse_spec
from resnet_viz.jsonsafe import to_jsonable as json_safe
from resnet_viz.serve.store import RunStore
from resnet_viz.train.trainer import Trainer

TINY = ExperimentSpec(dataset="moons", depth=4, width=16, steps=40, eval_every=20, log_every=10)
LONG = TINY.replace(steps=20_000, eval_every=1000, log_every=100)    # released long before its end
DIVERGES = TINY.replace(depth=8, width=32, lr=10.0, norm="none")     # NaN within a few steps
ROOT = Path(__file__).resolve().parents[1]
ENDED = ("finished", "stopped", "diverged", "failed", "cancelled", "interrupted")


def wait_for(pred, timeout: float = 60.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def rss_mb() -> float:
    """Resident memory of this process, after a full collection handed back to the OS."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)    # glibc keeps freed arenas otherwise
    except (OSError, AttributeError):
        pass
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (4096 / 2**20)


class Built:
    """Trainer factory that keeps a weak reference to every trainer it builds."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref] = []
        self.lock = threading.Lock()

    def __call__(self, spec: ExperimentSpec) -> Trainer:
        trainer = Trainer(spec)
        with self.lock:
            self.refs.append(weakref.ref(trainer))
        return trainer

    def alive(self) -> int:
        gc.collect()
        return sum(r() is not None for r in self.refs)


# --- (a) many sessions come and go ---------------------------------------------------------

def _class_round(q: JobQueue, reaper: SessionReaper, connected: set[str], r: int, n: int = 20) -> None:
    """``n`` students arrive: half join one lesson preset, a quarter start long runs of their
    own, a quarter short ones; they watch for a moment, then every tab closes."""
    sids = [f"round{r}-tab{i}" for i in range(n)]
    jobs = []
    for i, sid in enumerate(sids):
        spec = (LONG if i < n // 2 else LONG.replace(seed=100 * r + i) if i < 3 * n // 4
                else TINY.replace(seed=100 * r + i))
        connected.add(sid)
        reaper.touch(sid)
        jobs.append(q.submit(spec, sid))
    assert len({j.key for j in jobs[: n // 2]}) == 1                  # the preset is one job
    wait_for(lambda: jobs[0].state == "running" and jobs[0].snapshot()["step"] > 0, what="the preset")
    threads = threading.active_count()
    for sid in sids:                                                  # the tabs close
        connected.discard(sid)
    wait_for(lambda: reaper.tracked() == 1, what="the reaper")        # only the teacher is left
    assert threading.active_count() <= threads                       # releasing spawns nothing
    wait_for(lambda: all(j.state in ENDED for j in jobs) and q.stats()["running"] == 0, what="workers")
    long_states = {j.state for j in jobs[: 3 * n // 4]}
    assert long_states == {"cancelled"}, long_states                  # nobody watches them any more


def test_twenty_sessions_come_and_go_threads_trainers_and_memory_come_back():
    baseline = set(threading.enumerate())
    built = Built()
    q = JobQueue(max_concurrent=2, trainer_factory=built, torch_threads=1, cache_size=8,
                 max_jobs_per_session=4)
    connected = {"teacher"}
    reaper = SessionReaper(q.release_session, lambda sid: sid in connected, timeout_s=0.2,
                           max_idle_s=60, interval_s=0.05).start()
    reaper.touch("teacher")
    try:
        teacher = q.submit(TINY.replace(seed=999), "teacher")
        wait_for(lambda: teacher.state == "finished", what="the teacher's run")
        mem = []
        for r in range(3):                  # round 0 warms up allocators and torch's caches
            _class_round(q, reaper, connected, r)
            reaper.touch("teacher")         # the teacher's tab is still open and polling
            mem.append(rss_mb())
            ours = [t for t in threading.enumerate() if t not in baseline]
            assert sorted(t.name for t in ours) == ["resnet-viz-reaper", "resnet-viz-worker-0",
                                                    "resnet-viz-worker-1"]
            assert built.alive() == 0       # every trainer freed: cancelled and finished alike
            stats = q.stats()
            assert stats["queued"] == stats["running"] == 0 and stats["cached"] <= 8
        assert reaper.released == 60 and reaper.tracked() == 1
        assert "teacher" in teacher.subscribers and teacher.state == "finished"
        # Later rounds add nothing that stays: no per-session leak.
        print("RSS after each round (MB):", [round(m, 1) for m in mem])
        assert mem[2] - mem[0] < 15, mem          # measured: under 1 MB
    finally:
        reaper.stop()
        q.shutdown()
    assert set(threading.enumerate()) == baseline


# --- (b) the app: sessions start runs, then their tabs are dropped ----------------------------

def test_pandas_is_imported_before_any_thread_can_race_plotly():
    """plotly checks ``sys.modules["pandas"]`` without the import lock; a thread importing
    pandas (sklearn does, when the warm-up or a worker loads digits) while a session builds
    a figure made the first page of a fresh server fail with "partially initialized module
    'pandas'" (seen in bench/bench_classroom.py and here). The app's import path must import
    pandas itself, before any session or worker thread exists."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import resnet_viz.ui.frame; "
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("True"), "pages/common.py must `import pandas` (see docstring)"


@pytest.fixture
def tab_ids(monkeypatch):
    """AppTest gives every instance the same session id; tell tabs apart by one set in their
    session state (``common.session_id`` is what the app uses for subscriptions and heartbeats)."""
    import streamlit as st
    from resnet_viz.ui import frame as common

    monkeypatch.setattr(common, "session_id", lambda: st.session_state.get("_tab", "no-session"))


def _open_tab(name: str, params: dict[str, str]):
    from streamlit.testing.v1 import AppTest

    from app_helpers import APP
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.session_state["_tab"] = name
    at.query_params = params
    at.run()
    at.switch_page("pages/train.py").run()
    at.button(key="start").click().run()
    if any(b.key == "start_anyway" for b in at.button):             # a "big" run asks first
        at.button(key="start_anyway").click().run()
    assert not at.exception, [(e.value, "".join(e.stack_trace)) for e in at.exception]
    return at


def test_dropped_app_sessions_are_released_and_the_shared_run_goes_on(app_env, tab_ids):
    preset = dict(TINY_PARAMS, steps="5000", eval_every="1000", log_every="100")
    tabs = {name: _open_tab(name, params) for name, params in (
        ("stays", preset), ("leaves", preset),
        ("own1", dict(preset, seed="1")), ("own2", dict(preset, seed="2")))}
    svc = services()
    q = svc.queue
    pairs = {n: dict(at.session_state["pair"].keys) for n, at in tabs.items()}
    assert pairs["stays"] == pairs["leaves"]                         # one preset, one pair
    assert len({k for p in pairs.values() for k in p.values()}) == 6
    shared = [q.get(k) for k in pairs["stays"].values()]
    assert all(j.subscribers == {"stays", "leaves"} for j in shared)
    own = [q.get(k) for n in ("own1", "own2") for k in pairs[n].values()]

    svc.reaper.stop()                      # reap by hand below, not on the thread's clock
    svc.reaper.timeout_s = 0.5                                       # instead of 20 s
    time.sleep(0.6)
    tabs["stays"].run()                                              # a page run is a heartbeat
    no_exception(tabs["stays"])
    bars = " ".join(str(p.proto.text) for p in tabs["stays"].get("progress"))
    assert bars.count("shared with 1 other session(s)") == 2         # both runs of the pair
    released = svc.reaper.reap()
    assert sorted(released) == ["leaves", "own1", "own2"]
    assert all(j.state == "cancelled" for j in own)                  # unshared: cancelled ...
    wait_for(lambda: all(j.run.trainer is None for j in own), what="trainers freed")  # ... and freed
    assert all(j.subscribers == {"stays"} and j.state in ("queued", "running") for j in shared)
    assert q.stats()["running"] <= q.max_concurrent
    tabs["stays"].run()
    no_exception(tabs["stays"])
    bars = " ".join(str(p.proto.text) for p in tabs["stays"].get("progress"))
    assert "resnet" in bars and "shared with" not in bars       # alone now: no shared note


# --- (c) bounded histories and figures -----------------------------------------------------------

def test_a_long_shared_run_stays_small_for_every_watcher():
    spec = ExperimentSpec(dataset="moons", depth=2, width=8, n_samples=64, batch_size=16,
                          steps=1000, eval_every=1, log_every=1)   # logs everything, every step
    with JobQueue(max_concurrent=1, torch_threads=1) as q:
        jobs = [q.submit(spec, f"student{i}") for i in range(30)]
        assert all(j is jobs[0] for j in jobs)
        job = jobs[0]
        wait_for(lambda: job.state in ENDED, what="the long run")
        snaps = [job.snapshot() for _ in jobs]                          # 30 sessions poll it
    assert job.state == "finished" and snaps[0]["step"] == 1000
    assert len({id(s["history"]) for s in snaps}) == 1                 # one copy shared by all
    for series in (*snaps[0]["history"].values(), snaps[0]["probe_step"], snaps[0]["grad_norms"]):
        assert len(series) <= HISTORY_POINTS + 1
    assert len(json.dumps(json_safe(snaps[0]))) < 250_000
    run = snaps[0]
    figs = [loss_curves([run] * 4, "loss"), loss_curves([run], "acc"), grad_norm_heatmap(run),
            grad_norm_by_depth([run]), response_std([run]), branch_ratio([run])]
    for fig in figs:
        for trace in fig.data:
            for axis in ("x", "y"):
                assert len(getattr(trace, axis, None) or ()) <= min(MAX_POINTS, HISTORY_POINTS + 1)
    heat = figs[2].data[0]
    assert len(heat.x) * len(heat.y) <= MAX_CELLS
    assert all(len(f.to_json()) < 400_000 for f in figs)


# --- (d) divergence is one run's problem -----------------------------------------------------

def test_a_diverging_shared_run_stops_itself_while_another_sessions_run_finishes(tmp_path):
    good = TINY.replace(seed=3, steps=120)
    with JobQueue(max_concurrent=1, torch_threads=1) as q:          # the reference: alone
        alone = q.submit(good, "solo")
        wait_for(lambda: alone.state in ENDED)
        reference = alone.snapshot()
    store = RunStore(tmp_path)
    built = Built()
    with JobQueue(max_concurrent=2, store=store, trainer_factory=built, torch_threads=1) as q:
        bad = [q.submit(DIVERGES, f"a{i}") for i in range(3)]       # three students share it
        other = q.submit(good, "b")
        wait_for(lambda: bad[0].state in ENDED and other.state in ENDED)
        snap = bad[0].snapshot()
        assert bad[0].state == "diverged" and bad[0].error is None
        reason = snap["final"]["stopped_reason"]
        assert "diverged" in reason and snap["step"] < DIVERGES.steps
        assert other.state == "finished"
        for key in ("history", "grad_norms", "batch_loss"):           # untouched, bit for bit
            assert other.snapshot()[key] == reference[key]
        assert q.submit(DIVERGES, "a4") is bad[0]                    # the outcome is cached ...
        assert len(built.refs) == 2                                  # ... nothing recomputed
    rec = store.get(bad[0].key, with_weights=False)
    assert rec.status == "diverged" and rec.result["final"]["stopped_reason"] == reason
    json.dumps(rec.result, allow_nan=False)                          # NaN stored as null
    store.close()


# --- (e) determinism across routes ---------------------------------------------------------------

def test_identical_specs_by_every_route_give_identical_histories(tmp_path, capsys):
    """A spec typed differently in two URLs is one spec; the queue (adaptive chunks, another
    job training beside it), a bare trainer and the CLI all produce the same run."""
    a, na = parse_spec({"dataset": "moons", "depth": "4", "width": "16", "lr": "0.10",
                        "steps": "60", "eval_every": "20", "log_every": "10", "seed": "7"})
    b, nb = parse_spec({"seed": ["1", "7.0"], "log_every": "1e1", "eval_every": " 20 ", "steps": "6e1",
                        "lr": "1e-1", "width": "16.0", "depth": "4", "dataset": "moons", "utm": "x"})
    assert not na and not nb and a == b and a.spec_hash() == b.spec_hash()
    with JobQueue(max_concurrent=2, torch_threads=1, chunk_s=0.01) as q:
        noisy = q.submit(LONG.replace(seed=5), "neighbour")          # trains on the other worker
        job = q.submit(a, "s1")
        assert q.submit(b, "s2") is job
        wait_for(lambda: job.state in ENDED)
        q.release(noisy, "neighbour")
        queued = job.snapshot()
    direct = Trainer(a)
    direct.train_steps(a.steps)
    direct = direct.snapshot()
    out = tmp_path / "cli.json"
    flags = [f"--{k}={v}" for k, v in a.to_query_params().items()]
    assert cli.main(["train", *flags, "--quiet", "--json", str(out)]) == 0
    capsys.readouterr()
    by_cli = json.loads(out.read_text())
    assert queued["state"] == "finished" and queued["spec_hash"] == by_cli["spec_hash"] == a.spec_hash()
    for key in ("history", "batch_loss", "grad_norms", "response_std", "branch_ratio"):
        assert queued[key] == direct[key], key
        assert json_safe(queued[key]) == by_cli[key], key
