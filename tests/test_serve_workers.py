"""Worker processes: same numbers as in-process training, faults contained, nothing left behind."""
from __future__ import annotations

import multiprocessing
import os
import signal
import struct
import time

import pytest
import torch

from app_helpers import host_processes
from resnet_viz.serve.queue import JobQueue
from resnet_viz.serve.worker_host import MAX_FRAME, recv_message, send_message
from resnet_viz.serve.workers import HostDied, ProcessPool, ProcessTrainer
from resnet_viz.spec import ExperimentSpec
from resnet_viz.serve.store import RunStore
from resnet_viz.train.trainer import Trainer, model_from_bytes

SPEC = ExperimentSpec(dataset="moons", depth=6, width=8, steps=60, eval_every=20, log_every=5)


@pytest.fixture
def pool(tmp_path):
    p = ProcessPool(2, str(tmp_path))
    yield p
    p.shutdown()
    assert host_processes() == []


def _train(trainer, chunk: int = 7):
    while not trainer.done:
        trainer.train_steps(chunk)
    return trainer


def test_a_host_trains_exactly_what_this_process_trains(pool):
    torch.set_num_threads(1)  # the hosts' setting: a deep net's numbers depend on it
    remote, local = _train(pool(SPEC)), _train(Trainer(SPEC))
    a, b = remote.snapshot(), local.snapshot()
    assert a["history"] == b["history"] and a["grad_norms"] == b["grad_norms"]
    assert a["status"] == b["status"] == "finished" and remote.step == local.step == 60
    weights = model_from_bytes(SPEC, remote.weights()).state_dict()
    mine = model_from_bytes(SPEC, local.weights()).state_dict()       # both with precise BN
    assert all(torch.equal(weights[k], v) for k, v in mine.items())
    assert remote.cpu_s > 0


def test_trainers_spread_over_the_hosts_and_are_freed_there(pool):
    a, b = pool(SPEC), pool(SPEC.replace(seed=1))
    assert a.host is not b.host and len(pool.pids()) == 2
    a.close()
    reply, _ = a.host.call({"op": "train", "id": a.id, "n": 1})  # the drop went with it
    assert not reply["ok"] and "no trainer" in reply["error"]
    assert pool(SPEC.replace(seed=2)).host is a.host      # the emptier host takes the next one
    assert pool.build_on(SPEC.replace(seed=3), 1).host is pool.hosts[1]   # the queue's worker 1


def test_stop_ends_the_run_in_the_host(pool):
    t = pool(SPEC)
    t.train_steps(3)
    t.stop("stopped by the student")
    assert t.done and t.snapshot()["final"]["stopped_reason"] == "stopped by the student"


def test_a_dataset_that_cannot_load_is_a_message_not_a_crash(pool):
    with pytest.raises(ValueError, match="(?i)mnist"):
        pool(SPEC.replace(dataset="mnist", model="mlp"))
    assert pool(SPEC).step == 0                           # the host lives on


def test_a_killed_host_fails_its_runs_clearly_and_restarts(tmp_path):
    store = RunStore(tmp_path / "runs")
    pool = ProcessPool(1, str(tmp_path))
    with JobQueue(max_concurrent=1, store=store, trainer_factory=pool) as q:
        job = q.submit(SPEC.replace(steps=100_000, eval_every=10_000), "s1")
        while job.snapshot()["step"] < 5:
            time.sleep(0.05)
        os.kill(pool.pids()[0], 9)
        while job.state == "running":
            time.sleep(0.05)
        assert job.state == "failed" and "stopped unexpectedly" in job.error
        assert store.get(job.key).status == "failed"
        again = q.submit(SPEC, "s1")                     # a fresh host takes the next job
        while again.state in ("queued", "running"):
            time.sleep(0.05)
        assert again.state == "finished"
    assert host_processes() == []


def test_a_hung_host_is_stopped_and_its_run_fails_clearly(tmp_path):
    """A host that stops answering (here: SIGSTOP, as a deadlocked native library would
    look) must not hold its worker and lock for ever."""
    store = RunStore(tmp_path / "runs")
    pool = ProcessPool(1, str(tmp_path))
    pool.warm()                                          # a cold start takes longer than 2 s
    pool.hosts[0].timeout_s = 2.0                        # chunks take ~0.15 s
    with JobQueue(max_concurrent=1, store=store, trainer_factory=pool) as q:
        job = q.submit(SPEC.replace(steps=100_000, eval_every=10_000), "s1")
        while job.snapshot()["step"] < 5 and job.state in ("queued", "running"):
            time.sleep(0.05)
        hung = pool.pids()[0]
        os.kill(hung, signal.SIGSTOP)
        t0 = time.monotonic()
        while job.state == "running" and time.monotonic() - t0 < 30:
            time.sleep(0.05)
        assert job.state == "failed" and "did not answer for 2 s" in job.error
        assert time.monotonic() - t0 < 10
        assert hung not in host_processes()                # killed, not left stopped
        pool.hosts[0].timeout_s = 600.0
        again = q.submit(SPEC, "s1")
        while again.state in ("queued", "running"):
            time.sleep(0.05)
        assert again.state == "finished"
    assert host_processes() == []


def test_a_queue_on_a_pool_stores_weights_and_leaves_no_process(tmp_path):
    store = RunStore(tmp_path / "runs")
    with JobQueue(max_concurrent=2, store=store, trainer_factory=ProcessPool(2, str(tmp_path))) as q:
        jobs = [q.submit(SPEC.replace(seed=s), "s1") for s in range(3)]
        while any(j.state in ("queued", "running") for j in jobs):
            time.sleep(0.05)
        assert [j.state for j in jobs] == ["finished"] * 3
        assert all(j.model_copy() is not None for j in jobs)
        assert store.get(jobs[0].key).weights
    assert host_processes() == []


def test_messages_round_trip_and_absurd_ones_are_refused():
    ours, theirs = multiprocessing.Pipe()
    send_message(ours, {"op": "train", "x": float("nan")}, b"\x00\x01")
    msg, blob = recv_message(theirs)
    assert msg["op"] == "train" and msg["x"] != msg["x"] and blob == b"\x00\x01"
    ours.send_bytes(b'{"op": "train"}')                   # a header, then the pipe closes
    ours.close()
    assert recv_message(theirs) is None                  # a pipe that closed mid-message
    ours, theirs = multiprocessing.Pipe()
    os.write(ours.fileno(), struct.pack("!i", MAX_FRAME + 1))   # a length, never its bytes
    assert recv_message(theirs) is None                  # refused before reading (no hang)


def test_a_restarted_host_refuses_the_old_runs(pool):
    t = pool(SPEC)
    os.kill(t.host.pid(), 9)
    with pytest.raises(HostDied):
        t.train_steps(1)
    with pytest.raises(HostDied, match="restarted"):
        t.host.start()
        t.train_steps(1)


def _rss_mb(pid: int) -> float:
    return int(open(f"/proc/{pid}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_a_host_gives_the_memory_of_ended_runs_back(pool):
    host = pool.hosts[0]
    host.start()
    before = _rss_mb(host.pid())
    big = pool(SPEC.replace(width=1024, depth=12, steps=5))   # ~50 MB of weights, x3 with SGD state
    assert big.host is host                                   # the emptier host, first among equals
    _train(big, chunk=5)
    peak = _rss_mb(host.pid())
    big.close()                                               # idle host: dropped at once
    reply, _ = host.call({"op": "drop"})
    after = _rss_mb(host.pid())
    assert reply["trainers"] == 0
    assert peak - before > 100 and after - before < 0.25 * (peak - before), (before, peak, after)


def test_until_its_host_has_warmed_up_a_pool_with_a_local_factory_trains_in_process(tmp_path):
    """The first student on a fresh server does not wait for a host's torch import."""
    pool = ProcessPool(1, str(tmp_path), local=Trainer)
    try:
        cold = pool.build_on(SPEC, 0)
        assert type(cold) is Trainer and pool.pids() == []        # nothing waited for a host
        pool.warm()
        warm = pool.build_on(SPEC.replace(seed=1), 0)
        assert isinstance(warm, ProcessTrainer) and len(pool.pids()) == 1
        torch.set_num_threads(1)
        assert _train(cold).snapshot()["history"] == _train(Trainer(SPEC)).snapshot()["history"]
        warm.close()
    finally:
        pool.shutdown()
    assert host_processes() == []
