"""Train in worker processes, so training and page rendering do not share one GIL.

A small net spends most of a step in Python (module calls, hooks, the optimiser loop), and
Python runs one thread at a time per process: with training threads inside the Streamlit
server, 30 students' page reruns and the two runs they wait for take turns on one lock
(measured: a shared pair trained in 17.4 s under a class versus 7.0 s alone, on 2 cores).
A :class:`ProcessPool` keeps ``n`` long-lived trainer hosts (``python -m resnet_viz.serve.worker_host``,
one per worker of the queue) and hands out :class:`ProcessTrainer` proxies with the
:class:`~resnet_viz.train.trainer.Trainer` interface the queue drives, so the queue, the cache
and the pages do not change. A trainer stays in the host that built it (its weights,
optimiser state and batch order live there); a chunk's reply carries the new snapshot, so
the pages' polls read it from memory and never wait on a host.

A host reads and answers on its stdin, one end of a :func:`multiprocessing.Pipe`: JSON
headers and raw weight bytes (``worker_host.py``, the loop each host runs), nothing
pickled. The host exits when its pipe closes, so a killed server leaves no orphans; a
host that dies, or hangs (silent for ``RESNET_VIZ_HOST_TIMEOUT_S``, 600 s), fails the
jobs it held with a clear message and is restarted for the next job. Until a host has
warmed up, a pool given a ``local`` factory builds in this process instead (cold start).
Nothing here imports streamlit.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

from resnet_viz.serve.worker_host import recv_message, send_message
from resnet_viz.spec import ExperimentSpec

log = logging.getLogger(__name__)
# A chunk is ~0.15 s and a build loads at most one dataset: a host silent this long is hung
# (a deadlock in a native library, a stopped process), not slow.
HANG_S = float(os.environ.get("RESNET_VIZ_HOST_TIMEOUT_S", "600"))


class HostDied(RuntimeError):
    """The process that held a trainer is gone; the message is for people."""


class TrainerHost:
    """One host process. Calls are serialised: a host trains one chunk at a time."""

    def __init__(self, data_dir: str, threads: int = 1, timeout_s: float = HANG_S) -> None:
        self.data_dir, self.threads, self.timeout_s = data_dir, threads, timeout_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None   # our end of the host's pipe
        self.generation = 0      # bumped at each (re)start: proxies of an old one are dead
        self.live = 0            # proxies not yet closed, for placement
        self._live_lock = threading.Lock()  # not _lock: close() must never wait for a chunk
        self._drops: list[str] = []
        self.ready = threading.Event()   # warmed up once: a build will not wait for torch's import

    def _start_locked(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._disconnect_locked()
        root = str(Path(__file__).resolve().parents[2])  # the folder that holds resnet_viz/
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        ours, theirs = multiprocessing.Pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "resnet_viz.serve.worker_host", self.data_dir, str(self.threads)],
                stdin=theirs.fileno(), env=env)
        finally:
            theirs.close()  # the host's copy is its stdin; when ours closes it sees the end
        self._conn = ours
        self.generation += 1
        self._drops.clear()

    def start(self) -> int:
        """Start the process (if not running), warm it up (``training.warm_up``); its generation."""
        self.call({"op": "warm"})
        self.ready.set()
        return self.generation

    def call(self, msg: dict[str, Any], generation: int | None = None) -> tuple[dict[str, Any], bytes]:
        """Send one request and wait for its reply. Raises :class:`HostDied`."""
        with self._lock:
            if generation is not None and generation != self.generation:
                raise HostDied("the training process that held this run was restarted; "
                               "start the run again")
            self._start_locked()
            return self._call_locked(msg)

    def _call_locked(self, msg: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        proc, conn = self._proc, self._conn
        assert proc is not None and conn is not None
        if self._drops:
            msg, self._drops = {**msg, "drop": self._drops}, []
        try:
            send_message(conn, msg)
            # One reply per request, and nothing buffered on this side: the pipe itself
            # says whether the reply has begun.
            if not conn.poll(self.timeout_s):
                self._kill_hung(proc)
            frame = recv_message(conn)
        except (OSError, ValueError):  # a host gone mid-request, or a reply that is not JSON
            frame = None
        if frame is None:
            code = proc.poll() if proc.poll() is not None else proc.wait(timeout=5)
            self._proc = None
            self._disconnect_locked()
            raise HostDied(f"the training process stopped unexpectedly (exit code {code}); "
                           "its runs are lost, start them again")
        return frame

    def _kill_hung(self, proc: subprocess.Popen[bytes]) -> None:
        proc.kill()
        proc.wait()
        self._proc = None
        self._disconnect_locked()
        raise HostDied(f"the training process did not answer for {self.timeout_s:.0f} s and was "
                       "stopped; its runs are lost, start them again")

    def _disconnect_locked(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def count(self, delta: int) -> None:
        with self._live_lock:
            self.live += delta

    def drop(self, tid: str) -> None:
        """Forget trainer ``tid``: now if the host is idle, else with its next request
        (never waits for a busy host)."""
        self._drops.append(tid)
        if self._lock.acquire(blocking=False):
            try:
                if self._drops and self._proc is not None and self._proc.poll() is None:
                    self._call_locked({"op": "drop"})
            except HostDied:
                pass  # the next call restarts it
            finally:
                self._lock.release()

    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def close(self, timeout: float = 10.0) -> None:
        """Ask the process to exit; kill it if it does not within ``timeout``."""
        with self._lock:
            proc, conn, self._proc, self._conn = self._proc, self._conn, None, None
        if proc is None or conn is None:  # never started, or already gone
            return
        try:
            if proc.poll() is None:
                send_message(conn, {"op": "exit"})
                conn.close()
            proc.wait(timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            conn.close()


class ProcessTrainer:
    """A trainer living in a host: the :class:`~resnet_viz.train.trainer.Trainer` interface the
    queue uses (``train_steps``, ``stop``, ``snapshot``, ``weights``, ``step``, ``done``)."""

    def __init__(self, spec: ExperimentSpec, host: TrainerHost) -> None:
        self.spec, self.host, self.id = spec, host, uuid.uuid4().hex
        self.cpu_s = 0.0          # host CPU time spent on this run (benchmark and dashboard)
        self._closed = False
        reply = self._call({"op": "build", "spec": spec.to_dict()}, build=True)
        self.generation = host.generation
        host.count(+1)
        self._take(reply)

    def _call(self, msg: dict[str, Any], build: bool = False) -> dict[str, Any]:
        reply, _ = self._call_blob(msg, build)
        return reply

    def _call_blob(self, msg: dict[str, Any], build: bool = False) -> tuple[dict[str, Any], bytes]:
        reply, blob = self.host.call({**msg, "id": self.id}, None if build else self.generation)
        self.cpu_s += float(reply.get("cpu_s", 0.0))
        if not reply.get("ok"):
            error = str(reply.get("error", "the training process refused the request"))
            raise (ValueError if reply.get("value_error") else RuntimeError)(error)
        return reply, blob

    def _take(self, reply: dict[str, Any]) -> None:
        self._snap, self.step, self.done = reply["snap"], reply["step"], reply["done_flag"]
        self.status = self._snap.get("status", "running")

    def train_steps(self, n: int) -> int:
        reply = self._call({"op": "train", "n": n})
        self._take(reply)
        return int(reply["done"])

    def stop(self, reason: str, status: str = "stopped") -> None:
        self._take(self._call({"op": "stop", "reason": reason, "status": status}))

    def snapshot(self) -> dict[str, Any]:
        """The snapshot of the last chunk (no round trip; safe from any thread)."""
        return self._snap

    def weights(self) -> bytes:
        return self._call_blob({"op": "weights"})[1]

    def close(self) -> None:
        """Free the trainer in its host. Idempotent."""
        if not self._closed:
            self._closed = True
            self.host.count(-1)
            self.host.drop(self.id)


class ProcessPool:
    """A trainer factory for :class:`~resnet_viz.serve.queue.JobQueue`. The queue calls
    ``build_on(spec, slot)``: worker ``slot`` builds in host ``slot`` and its jobs resume only
    there, so each host trains one run at a time. Placing by the fewest live trainers
    (``pool(spec)``, for callers without workers) counts paused runs too, so it could put
    two running jobs in one host while the other idled."""

    def __init__(self, n: int, data_dir: str = "./data", threads: int = 1,
                 local: Callable[[ExperimentSpec], Any] | None = None) -> None:
        self.hosts = [TrainerHost(data_dir, threads) for _ in range(max(1, n))]
        self._lock = threading.Lock()
        # Until a host has warmed up (torch's import, ~3-5 s after the server's first page),
        # ``local`` builds an ordinary in-process trainer instead of waiting for it: the
        # first student on a fresh server saw the first point after 5.1 s, not 0.6 s.
        self.local = local

    def __call__(self, spec: ExperimentSpec) -> ProcessTrainer:
        with self._lock:
            host = min(self.hosts, key=lambda h: h.live)
            host.count(+1)  # reserve the place while the (slow) build runs
        try:
            return ProcessTrainer(spec, host)
        finally:
            host.count(-1)

    def build_on(self, spec: ExperimentSpec, slot: int) -> Any:
        """The trainer for ``spec`` in the host of queue worker ``slot``: a
        :class:`ProcessTrainer`, or what ``local`` builds while that host is still starting."""
        host = self.hosts[slot % len(self.hosts)]
        if self.local is not None and not host.ready.is_set():
            return self.local(spec)
        return ProcessTrainer(spec, host)

    def warm(self) -> None:
        """Start every host now, side by side (each pays torch's import and the default
        dataset's load once, ~3 s), not in the first student's run."""
        def one(host: TrainerHost) -> None:
            try:
                host.start()
            except HostDied:
                log.warning("a training process could not start", exc_info=True)
        threads = [threading.Thread(target=one, args=(h,), name=f"resnet-viz-host-start-{i}")
                   for i, h in enumerate(self.hosts)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def pids(self) -> list[int]:
        return [p for h in self.hosts if (p := h.pid()) is not None]

    def shutdown(self) -> None:
        """Stop every host (the queue calls this once its workers are done)."""
        for host in self.hosts:
            host.close()

