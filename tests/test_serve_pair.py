"""A session's pair on the real job queue (tiny runs), its shelf, and the per-process services."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from resnet_viz.serve.config import ClassroomConfig
from resnet_viz.serve.queue import JobQueue
from resnet_viz.serve.services import build_services
from resnet_viz.serve.pair import (PairSession, Shelf, attribution_spec, comparison_pair, extra_depth_specs,
                                load_model, load_run, shatter_spec)
from resnet_viz.spec import ExperimentSpec
from resnet_viz.serve.store import RunStore

TINY = ExperimentSpec(dataset="moons", depth=4, width=8, steps=30, eval_every=10, log_every=5)
ENDED = ("finished", "stopped", "diverged", "failed", "cancelled", "interrupted")


def wait_for(pred, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


@pytest.fixture
def queue(tmp_path):
    store = RunStore(tmp_path)
    q = JobQueue(max_concurrent=2, store=store, torch_threads=1)
    yield q
    q.shutdown()
    store.close()


def test_pair_is_the_residual_spec_and_its_plain_twin():
    plain, residual = comparison_pair(TINY.replace(shortcut="none"))
    assert residual.shortcut == "identity" and plain == residual.plain_twin()
    assert shatter_spec(ExperimentSpec(model="cnn", depth=20)).dataset == "grid1d"
    assert attribution_spec(TINY).dataset == "digits" and attribution_spec(ExperimentSpec()) == ExperimentSpec()
    assert {s.depth for s in extra_depth_specs(TINY, [4, 8])} == {8}


def test_start_train_and_shelve(queue):
    pair = PairSession("s1")
    assert pair.control(queue, "pause") == ["nothing to control yet: press Start first"]
    assert pair.start(queue, TINY) == []
    wait_for(lambda: all(j.state in ENDED for j in pair.jobs(queue).values()))
    snaps = [load_run(k, queue, queue.store) for k in pair.keys.values()]
    assert all(s["state"] == "finished" and len(s["history"]["step"]) == 4 for s in snaps)
    shelf = Shelf(limit=3)
    assert [shelf.add(s, s["key"]) for s in snaps] == [True, True]
    assert not shelf.add(snaps[0], "again") and len(shelf) == 2
    shelf.set_overlay([snaps[0]["key"]])
    assert shelf.overlay_keys() == [snaps[0]["key"]] and shelf.rows()[1]["overlay"]
    assert isinstance(load_model(snaps[0]["key"], queue, queue.store), torch.nn.Module)
    queue.forget(snaps[0]["key"])                                   # evicted: read back from the store
    assert load_run(snaps[0]["key"], queue, queue.store)["history"] == snaps[0]["history"]
    assert load_model(snaps[0]["key"], queue, queue.store) is not None
    assert pair.control(queue, "pause") == ["residual net: the run has already ended (finished)"]


def test_controls_on_a_shared_run_explain_themselves(queue):
    long = TINY.replace(steps=50_000, eval_every=1000)
    mine, theirs = PairSession("s1"), PairSession("s2")
    mine.start(queue, long), theirs.start(queue, long)
    problems = mine.control(queue, "pause")
    assert len(problems) == 2 and "shared with 1 other session" in problems[0]
    theirs.reset(queue)                                              # now mine alone
    assert mine.control(queue, "pause") == []
    wait_for(lambda: all(j.state == "paused" for j in mine.jobs(queue).values()))
    assert mine.control(queue, "step") == []
    assert mine.control(queue, "stop") == []
    wait_for(lambda: all(j.state == "stopped" for j in mine.jobs(queue).values()))
    with pytest.raises(ValueError):
        mine.control(queue, "explode")


def test_a_new_pair_stops_the_old_unfinished_one(queue):
    pair = PairSession("s1")
    pair.start(queue, TINY.replace(steps=50_000, eval_every=1000))
    old = list(pair.jobs(queue).values())
    notes = pair.start(queue, TINY)
    assert len(notes) == 2 and "stopped" in notes[0]
    wait_for(lambda: all(j.state in ENDED for j in old))
    assert {j.state for j in old} <= {"stopped", "cancelled"}
    pair.reset(queue)
    assert pair.keys == {}


def test_services_start_one_reaper_and_shut_down_cleanly(tmp_path):
    def ours() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("resnet-viz-")]
    before = ours()
    svc = build_services(ClassroomConfig(data_dir=str(tmp_path), max_concurrent_jobs=2), ["a notice"],
                         timeout_s=0.2)
    assert svc.notices == ["a notice"] and svc.store is not None
    job = svc.queue.submit(TINY.replace(steps=50_000, eval_every=1000), "gone")
    svc.reaper.touch("gone")
    wait_for(lambda: job.state == "cancelled", 30)                 # nobody polls: released
    assert ours().count("resnet-viz-reaper") == before.count("resnet-viz-reaper") + 1
    svc.shutdown()
    svc.shutdown()                                                   # idempotent
    assert ours() == before


def test_wait_first_points_returns_once_the_runs_have_logged(queue):
    pair = PairSession("s1")
    pair.start(queue, TINY.replace(steps=50_000, eval_every=1000))
    assert pair.wait_first_points(queue, timeout=300)
    assert all(j.snapshot()["history"]["step"] == [0] for j in pair.jobs(queue).values())
    pair.reset(queue)


def test_a_quiet_server_drops_its_caches_but_not_the_runs(tmp_path):
    cleared: list[str] = []
    svc = build_services(ClassroomConfig(data_dir=str(tmp_path), max_concurrent_jobs=1, worker_processes=False),
                         [], on_quiet=[lambda: cleared.append("figures"), lambda: 1 / 0])
    try:
        job = svc.queue.submit(TINY, "s1")
        wait_for(lambda: job.state == "finished", 60)
        svc.queue.release(job, "s1")
        assert svc.queue.stats()["cached"] == 1
        svc.reaper.trim()                      # what the reaper runs 150 s after the last tab
        assert cleared == ["figures"]          # a failing clear is logged, the rest still runs
        assert svc.queue.stats()["cached"] == 0 and svc.queue.get(job.key) is None
        run = load_run(job.key, svc.queue, svc.store)
        assert run["state"] == "finished" and run["history"]["step"]   # the store still has it
        again = svc.queue.submit(TINY, "s2")   # served from the store, not trained again
        assert again.state == "finished"
    finally:
        svc.shutdown()
