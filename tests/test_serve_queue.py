"""The shared job queue, driven by the real Trainer on tiny runs (each well under a second)."""
from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest
import torch

from resnet_viz.data.datasets import DataError, load_dataset
from resnet_viz.serve.queue import JobQueue, QueueFull
from resnet_viz.spec import ExperimentSpec
from resnet_viz.serve.store import RunStore
from resnet_viz.train.trainer import Trainer, model_from_bytes

TINY = ExperimentSpec(dataset="moons", depth=4, width=16, steps=40, eval_every=20, log_every=10)
LONG = TINY.replace(steps=20_000, eval_every=1000, log_every=100)   # cancelled long before its end
DIVERGES = TINY.replace(depth=8, width=32, lr=10.0, norm="none")  # NaN loss in 2-3 steps, any seed
ENDED = ("finished", "stopped", "diverged", "failed", "cancelled", "interrupted")


def wait_for(pred, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def wait_end(*jobs) -> None:
    wait_for(lambda: all(j.state in ENDED for j in jobs))


class Counting:
    """A trainer factory that counts builds and how many trainers train at the same moment."""

    def __init__(self) -> None:
        self.built: list[weakref.ref] = []
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, spec: ExperimentSpec) -> Trainer:
        counter = self

        class Watched(Trainer):
            def train_steps(self, n: int) -> int:
                with counter.lock:
                    counter.now += 1
                    counter.peak = max(counter.peak, counter.now)
                try:
                    return super().train_steps(n)
                finally:
                    with counter.lock:
                        counter.now -= 1

        trainer = Watched(spec)
        self.built.append(weakref.ref(trainer))
        return trainer


def queue(**kw) -> JobQueue:
    kw.setdefault("torch_threads", 1)  # tests share 2 cores with other suites
    return JobQueue(**kw)


def test_identical_specs_share_one_job():
    made = Counting()
    with queue(max_concurrent=2, trainer_factory=made) as q:
        a, b = q.submit(TINY, "s1"), q.submit(TINY.replace(), "s2")
        assert a is b and a.subscribers == {"s1", "s2"}
        wait_end(a)
        assert a.state == "finished" and len(made.built) == 1
        assert a.snapshot()["history"] == b.snapshot()["history"]
        assert q.submit(TINY, "s3") is a and len(made.built) == 1  # finished: from the cache


def test_same_spec_in_two_queues_gives_identical_histories():
    snaps = []
    for _ in range(2):
        with queue(max_concurrent=1) as q:
            job = q.submit(TINY, "s")
            wait_end(job)
            snaps.append(job.snapshot())
    assert snaps[0]["state"] == "finished"
    for key in ("history", "grad_norms", "batch_loss"):
        assert snaps[0][key] == snaps[1][key]


def test_concurrency_never_exceeds_the_limit():
    made = Counting()
    with queue(max_concurrent=2, trainer_factory=made) as q:
        jobs = [q.submit(TINY.replace(seed=i), f"s{i}") for i in range(5)]
        wait_end(*jobs)
        assert [j.state for j in jobs] == ["finished"] * 5
        assert made.peak <= 2 and q.stats()["peak_running"] <= 2
        assert q.stats()["threads_alive"] == 2
        jobs = [q.submit(LONG.replace(seed=i), f"s{i}") for i in range(3)]
        wait_for(lambda: made.now == 2)          # two really train at once ...
        time.sleep(0.3)
        assert made.peak == 2 and jobs[2].state == "queued"  # ... and never a third
        for i in range(3):
            q.release_session(f"s{i}")


def test_positions_estimates_and_cancel():
    made = Counting()
    with queue(max_concurrent=1, trainer_factory=made) as q:
        a, b, c = (q.submit(LONG.replace(seed=i), f"s{i}") for i in range(3))
        wait_for(lambda: a.run.trainer is not None)
        assert (q.position(a), q.position(b), q.position(c)) == (0, 1, 2)
        assert 0 <= q.estimate_wait_s(b) <= q.estimate_wait_s(c)
        assert c.snapshot()["queue_position"] == 2
        q.release(c, "s2")
        assert c.state == "cancelled" and q.position(b) == 1 and q.position(c) is None
        q.release(a, "s0")                      # running: freed by its worker at the next chunk
        assert a.state == "cancelled"
        wait_for(lambda: a.run.trainer is None and q.position(b) == 0)
        q.release(b, "s1")
        wait_for(lambda: q.stats()["running"] == 0)
    gc.collect()
    assert all(ref() is None for ref in made.built)  # every cancelled trainer was freed


def test_most_watched_job_goes_first_and_preempts_at_a_chunk_boundary():
    """A class waiting on one preset is not stuck behind a private run (issue 5's p95)."""
    solo = []
    with queue(max_concurrent=1) as q:
        ref = q.submit(TINY.replace(seed=7, steps=300), "alone")
        wait_end(ref)
        solo = ref.snapshot()
    with queue(max_concurrent=1, trainer_factory=Counting()) as q:
        private = q.submit(TINY.replace(seed=7, steps=300), "s0")
        wait_for(lambda: private.run.trainer is not None and private.run.trainer.step > 0)
        other = q.submit(LONG.replace(seed=3), "s1")           # as watched: waits its turn
        preset = q.submit(TINY.replace(seed=9, steps=300), "s2")
        q.submit(TINY.replace(seed=9, steps=300), "s3")       # a second student joins it
        assert q.position(preset) == 1 and q.position(other) == 2   # ranked by watchers
        wait_for(lambda: private.state == "queued")          # yielded its worker mid-run
        assert 0 < private.run.trainer.step < 300
        assert q.position(private) == 1 and q.position(other) == 2  # back at the front of its rank
        wait_end(preset)
        assert private.state != "finished"                    # the watched run went first
        assert q.position(other) == 1                         # the preempted run resumes first
        wait_end(private)
        q.release(other, "s1")
    ours = private.snapshot()
    for key in ("history", "grad_norms", "batch_loss"):       # preemption changes no number
        assert ours[key] == solo[key]


def test_pause_step_resume_and_worker_handover():
    with queue(max_concurrent=1) as q:
        a = q.submit(TINY.replace(steps=200, eval_every=50), "me")
        assert a.step(3, "me") == (True, "")    # still queued: trains 3 steps, then pauses
        wait_for(lambda: a.state == "paused")
        assert a.snapshot()["step"] == 3
        other = q.submit(TINY, "you")          # the paused job gave its worker back
        wait_end(other)
        assert other.state == "finished" and a.state == "paused"
        assert a.step(5, "me") == (True, "")
        wait_for(lambda: a.state == "paused")
        assert a.snapshot()["step"] == 8
        model = a.model_copy()
        assert model is not a.run.trainer.model and not model.training
        # the copy is the trainer's weights with precise-BN statistics (Trainer.weights)
        live = model_from_bytes(a.spec, a.run.trainer.weights()).state_dict()
        for (k, v), w in zip(model.state_dict().items(), live.values()):
            assert torch.equal(v, w), k
        assert a.resume("me") == (True, "")
        wait_end(a)
        assert a.state == "finished" and a.snapshot()["step"] == 200
        assert a.pause("me")[0] is False and "ended" in a.pause("me")[1]


def test_pause_while_running_and_stop():
    with queue(max_concurrent=1) as q:
        job = q.submit(LONG, "me")
        wait_for(lambda: job.state == "running" and job.run.trainer is not None)
        assert job.pause("me") == (True, "")
        wait_for(lambda: job.state == "paused")
        step = job.snapshot()["step"]
        time.sleep(0.1)
        assert job.snapshot()["step"] == step and q.stats()["running"] == 0
        assert job.stop("me") == (True, "")
        wait_end(job)
        assert job.state == "stopped" and job.snapshot()["final"]["stopped_reason"]


def test_shared_job_refuses_pause_step_stop():
    with queue(max_concurrent=1) as q:
        job = q.submit(LONG, "s1")
        q.submit(LONG, "s2")
        for ok, why in (job.pause("s1"), job.step(5, "s1"), job.stop("s2")):
            assert not ok and "shared with 1 other" in why
        assert not job.pause("stranger")[0] and not job.step(0, "s1")[0]
        q.release(job, "s2")
        assert job.pause("s1") == (True, "")   # sole subscriber again
        q.release(job, "s1")
        assert job.state == "cancelled"


def test_session_limit_and_free_joining():
    with queue(max_concurrent=1, max_jobs_per_session=2) as q:
        q.submit(LONG.replace(seed=1), "greedy")
        q.submit(LONG.replace(seed=2), "greedy")
        with pytest.raises(QueueFull, match="limit is 2"):
            q.submit(LONG.replace(seed=3), "greedy")
        shared = q.submit(LONG.replace(seed=4), "other")
        assert q.submit(LONG.replace(seed=4), "greedy") is shared  # joining costs nothing
        q.release_session("greedy")
        q.release_session("other")
        assert q.stats()["queued"] == 0


def test_sessions_come_and_go_without_leaking_threads():
    baseline = set(threading.enumerate())
    threads_before = torch.get_num_threads()
    made = Counting()
    q = queue(max_concurrent=2, trainer_factory=made)
    for i in range(12):
        q.submit(LONG.replace(seed=i % 6), f"tab{i}")
    wait_for(lambda: q.stats()["running"] == 2)
    for i in range(12):
        q.release_session(f"tab{i}")
    q.shutdown()
    assert set(threading.enumerate()) == baseline
    assert q.stats()["threads_alive"] == 0 and torch.get_num_threads() == threads_before
    gc.collect()
    assert made.built and all(ref() is None for ref in made.built)


def test_divergence_stops_only_that_job():
    with queue(max_concurrent=2) as q:
        bad, good = q.submit(DIVERGES, "a"), q.submit(TINY, "b")
        wait_end(bad, good)
        assert bad.state == "diverged" and good.state == "finished"
        assert "diverged" in bad.snapshot()["final"]["stopped_reason"]


def test_failures_are_reported_and_workers_survive(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_VIZ_DATA", str(tmp_path))
    mnist = TINY.replace(dataset="mnist")
    with pytest.raises(DataError) as expected:
        load_dataset(mnist)

    def factory(spec):
        if spec.seed == 13:
            class Broken(Trainer):
                def train_steps(self, n):
                    raise RuntimeError("boom")
            return Broken(spec)
        return Trainer(spec)

    with queue(max_concurrent=1, trainer_factory=factory) as q:
        missing, broken = q.submit(mnist, "a"), q.submit(TINY.replace(seed=13), "b")
        wait_end(missing, broken)
        assert missing.state == "failed" and missing.error == str(expected.value)
        assert broken.state == "failed" and broken.error == "RuntimeError: boom"
        after = q.submit(TINY, "c")
        wait_end(after)
        assert after.state == "finished" and q.stats()["threads_alive"] == 1
        assert q.submit(mnist, "a") is not missing  # a failed run may be retried


def test_store_persistence_and_cache(tmp_path):
    store = RunStore(tmp_path)
    with queue(max_concurrent=1, store=store, cache_size=1) as q:
        paused = q.submit(LONG, "p")
        paused.step(2, "p")
        wait_for(lambda: paused.state == "paused")
        assert store.get(paused.key).status == "running"    # a crash would leave this trace
        a, b = q.submit(TINY, "s"), q.submit(DIVERGES, "s")
        wait_end(a, b)
        assert store.get(a.key).status == "finished" and store.get(b.key).status == "diverged"
        assert q.get(a.key) is None and q.get(b.key) is b   # LRU evicted a; the store keeps it
        unstarted = q.submit(LONG.replace(seed=5), "s")
        unstarted.pause("s")
        assert unstarted.stop("s")[0] and unstarted.state == "stopped"  # nothing to train
        stopped = q.submit(TINY.replace(seed=6), "s")
        stopped.step(2, "s")
        wait_for(lambda: stopped.state == "paused")
        assert stopped.stop("s")[0]
        wait_end(stopped)
        assert stopped.state == "stopped" and store.get(stopped.key).status == "stopped"
        assert store.get(stopped.key).result["step"] == 2
    assert store.get(paused.key).status == "interrupted"     # shutdown interrupted it
    assert store.get(paused.key).result["step"] == 2         # ... keeping what it had logged
    made = Counting()
    with queue(max_concurrent=1, store=store, trainer_factory=made) as q:
        again = q.submit(TINY, "new")
        assert again.state == "finished" and not made.built   # nothing computed
        assert again.snapshot()["history"] == a.snapshot()["history"]
        assert again.model_copy() is not None and q.stats()["threads_alive"] == 0
        cancelled = q.submit(LONG.replace(seed=9), "x")
        wait_for(lambda: store.get(cancelled.key) is not None)
        q.release(cancelled, "x")
        wait_for(lambda: cancelled.run.trainer is None and q.stats()["running"] == 0)
        assert store.get(cancelled.key) is None       # no trace of a cancelled run
    store.close()


def test_watchers_of_a_running_job_share_one_copy_for_half_a_second(monkeypatch):
    from resnet_viz.serve import queue as queue_mod
    monkeypatch.setattr(queue_mod, "FRESH_S", 60.0)        # no tick boundary mid-test
    with queue(max_concurrent=1) as q:
        a = q.submit(TINY.replace(steps=100_000, eval_every=10_000), "me")
        # the trainer itself: a snapshot taken while it was still at step 0 is served for FRESH_S
        wait_for(lambda: a.run.trainer is not None and a.run.trainer.step > 0, timeout=300)
        first = a.snapshot()
        with q._lock:
            a.run.version += 1                 # a chunk trained since
        assert a.snapshot()["history"] is first["history"]       # within FRESH_S: the same copy
        monkeypatch.setattr(queue_mod, "FRESH_S", 0.0)
        assert a.snapshot()["history"] is not first["history"]   # another tick: rebuilt
        monkeypatch.setattr(queue_mod, "FRESH_S", 60.0)
        assert a.pause("me")[0]
        wait_for(lambda: a.state == "paused")
        assert a.snapshot()["state"] == "paused" and a.snapshot()["step"] == a.run.trainer.step
        q.release(a, "me")


def test_live_copies_of_all_runs_expire_on_the_same_clock_tick():
    """The pair's two runs refresh together, so a chart of both changes once per tick."""
    from resnet_viz.serve.queue import FRESH_S, _fresh
    old, new = (1, "running", False), (2, "running", False)
    assert _fresh((old, {}, 2 * FRESH_S), new, 2.9 * FRESH_S)        # same tick, newer chunk
    assert not _fresh((old, {}, 1.9 * FRESH_S), new, 2.1 * FRESH_S)  # younger than FRESH_S, next tick
    assert not _fresh((old, {}, 2 * FRESH_S), (2, "paused", False), 2.1 * FRESH_S)  # states are exact
    assert _fresh((old, {}, 0.0), old, 100.0)                         # nothing new: always served


class Pinned:
    """A factory like the worker-process pool: ``build_on(spec, slot)``, and each trainer
    notes the worker threads that drive it and whether two of a slot ever train at once."""

    def __init__(self) -> None:
        self.busy: dict[int, int] = {}
        self.clash = False
        self.lock = threading.Lock()
        self.trainers: list[Trainer] = []

    def __call__(self, spec: ExperimentSpec) -> Trainer:
        raise AssertionError("the queue must place trainers with build_on")

    def build_on(self, spec: ExperimentSpec, slot: int) -> Trainer:
        pool = self

        class Placed(Trainer):
            drivers: set[str] = set()

            def train_steps(self, n: int) -> int:
                self.drivers = self.drivers | {threading.current_thread().name}
                with pool.lock:
                    pool.busy[slot] = pool.busy.get(slot, 0) + 1
                    pool.clash |= pool.busy[slot] > 1
                try:
                    return super().train_steps(n)
                finally:
                    with pool.lock:
                        pool.busy[slot] -= 1

        trainer = Placed(spec)
        trainer.slot = slot
        self.trainers.append(trainer)
        return trainer


def test_a_preempted_job_resumes_only_in_the_worker_whose_process_holds_it():
    """With worker processes a trainer lives in one host; resuming it from the other worker
    would put two runs in one process (one core) while the other core idles."""
    pool = Pinned()
    with queue(max_concurrent=2, trainer_factory=pool) as q:
        a, b = q.submit(LONG, "a"), q.submit(LONG.replace(seed=1), "b")
        wait_for(lambda: all(j.run.trainer is not None and j.run.trainer.step > 0 for j in (a, b)))
        before = {j.key: j.run.trainer.step for j in (a, b)}
        c = q.submit(LONG.replace(seed=2), "c1")
        q.submit(LONG.replace(seed=2), "c2")          # two watchers: preempts one of a, b
        d = q.submit(LONG.replace(seed=3), "d1")
        for s in ("d2", "d3"):
            q.submit(LONG.replace(seed=3), s)          # three: preempts the other
        wait_for(lambda: c.state == d.state == "running" and a.state == b.state == "queued")
        for s in ("c1", "c2", "d1", "d2", "d3"):
            q.release_session(s)
        wait_for(lambda: all(j.run.trainer.step > before[j.key] for j in (a, b)))   # resumed, both
        for s in ("a", "b"):
            q.release_session(s)
        wait_for(lambda: q.stats()["running"] == 0)
    assert len(pool.trainers) == 4 and not pool.clash
    for t in pool.trainers:    # (c or d may have yielded before its first chunk)
        assert t.drivers <= {f"resnet-viz-worker-{t.slot}"}
    assert all(t.drivers for t in pool.trainers[:2])


def test_the_wait_estimate_sends_a_pinned_job_to_its_own_worker():
    """A preempted run can only resume in the worker whose process holds it: its wait is
    that worker's, even when the other worker frees up sooner."""
    from resnet_viz.serve.job import Job
    q = queue(max_concurrent=2)
    long_run, short_run = Job(TINY.replace(steps=1000), q), Job(TINY.replace(steps=100, seed=1), q)
    for worker, j in enumerate((long_run, short_run)):
        j.state, j.run.worker, j.run.s_per_step = "running", worker, 0.01   # 10 s and 1 s left
    pinned, free = Job(TINY.replace(seed=2), q), Job(TINY.replace(seed=3), q)
    pinned.run.slot, pinned.run.s_per_step = 0, 0.01
    for j in (pinned, free):
        j.state = "queued"
    with q._lock:
        q.lineup.running[:] = [long_run, short_run]
        q.lineup.waiting.extend([pinned, free])
    assert q.estimate_wait_s(pinned) == 10.0       # behind the long run in worker 0
    assert q.estimate_wait_s(free) == 1.0          # worker 1 frees up first
    with q._lock:
        pinned.run.slot = None
    assert q.estimate_wait_s(pinned) == 1.0 and q.estimate_wait_s(free) == 1.4   # 1 s + its 40 steps
    q.shutdown()


def test_a_run_that_fails_before_training_can_still_be_looked_up_and_retried():
    """A missing dataset fails the job before any trainer exists: the page must still find it
    (to say why), and the next submit trains it again instead of reusing the failure."""
    spec = TINY.replace(dataset="mnist")              # no MNIST files in this folder
    with queue(max_concurrent=1) as q:
        job = q.submit(spec, "me")
        wait_end(job)
        assert job.state == "failed" and "mnist" in job.error
        assert q.get(job.key) is job
        again = q.submit(spec, "me")
        assert again is not job
        wait_end(again)
        assert again.state == "failed"
