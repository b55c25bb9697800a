"""Inside the server process: counters around the trainers and script runs, then Streamlit.

``bench_classroom.py --serve COUNTERS -- run app.py ...`` lands in :func:`serve`. It wraps
``__init__`` / ``train_steps`` of ``Trainer`` and of the worker-process proxy
``ProcessTrainer`` (jobs built, steps and the CPU seconds the trainer reports, its host's
when it trains in a worker process, per spec hash), Streamlit's ``ScriptRunner._run_script``
(script runs by kind, with their thread's CPU seconds) and ``build_services`` (to read the
queue and reaper stats), then runs Streamlit. The counters go to a JSON file twice a second.
The app code itself is untouched.
"""
from __future__ import annotations

import cProfile
import json
import os
import pstats
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

from classroom.constants import ROOT


class PollProfile:
    """cProfile of the server's live polls on each thread's CPU clock (``--profile-polls``):
    waits for the interpreter lock, which bury the real costs in a wall-clock profile, don't count."""

    def __init__(self, path: str) -> None:
        self.path, self._stats, self._dirty = path, None, False
        self._lock = threading.Lock()

    def add(self, prof: cProfile.Profile) -> None:
        with self._lock:
            if self._stats is None:
                self._stats = pstats.Stats(prof)
            else:
                self._stats.add(prof)
            self._dirty = True

    def save(self) -> None:
        with self._lock:
            if self._dirty:
                self._stats.dump_stats(self.path)
                self._dirty = False


class Counters:
    """Everything the server counts for the bench, and the loop that writes it out."""

    def __init__(self, path: str, profile: PollProfile | None) -> None:
        self.path, self.profile = path, profile
        self.lock = threading.Lock()
        self.per_key: dict[str, dict[str, float]] = {}
        self.scripts: dict[str, dict[str, float]] = {}
        self.services: list[Any] = []        # every Services built; the last one is read
        # Chunks that asked a worker process for training while it trained another run's
        # chunk: two runs sharing one process (one core) while the other core may idle.
        self.in_host: dict[int, int] = {}
        self.clashes = 0
        self.main_clock = time.pthread_getcpuclockid(threading.main_thread().ident)  # the event loop

    def entry(self, trainer: Any) -> dict[str, float]:
        """The counters of ``trainer``'s spec (call with the lock held)."""
        key = trainer.__dict__.get("_bench_key")
        if key is None:
            key = trainer._bench_key = trainer.spec.spec_hash()
        return self.per_key.setdefault(key, {"built": 0, "steps": 0, "cpu_s": 0.0, "wall_s": 0.0,
                                             "first": time.time(), "last": time.time()})

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            doc: dict[str, Any] = {"per_key": {k: dict(v) for k, v in self.per_key.items()},
                                   "host_clashes": self.clashes,
                                   "scripts": {k: dict(v) for k, v in self.scripts.items()}}
        doc["event_loop_cpu_s"] = time.clock_gettime(self.main_clock)
        if self.services:
            svc = self.services[-1]
            doc["queue"] = svc.queue.stats()
            doc["reaper"] = {"tracked": svc.reaper.tracked(), "released": svc.reaper.released}
        doc["threads"] = threading.active_count()
        names: dict[str, int] = {}
        for t in threading.enumerate():   # "ScriptRunner", "resnet-viz-worker-0", ...
            base = re.sub(r"[-_ ]?\d+$", "", t.name.split(" (")[0])
            names[base] = names.get(base, 0) + 1
        doc["thread_names"] = names
        doc["time"] = time.time()
        return doc

    def dump_forever(self) -> None:
        while True:
            tmp = self.path + ".tmp"
            Path(tmp).write_text(json.dumps(self.snapshot()))
            os.replace(tmp, self.path)
            if self.profile is not None:
                self.profile.save()          # the server is killed at the end: save as we go
            time.sleep(0.5)


def count_trainers(cls: Any, counters: Counters) -> None:
    """Count builds, steps and CPU time (``cpu_s``: the host's when training runs in a
    worker process, this thread's otherwise) of every trainer of class ``cls``."""
    real_init, real_steps = cls.__init__, cls.train_steps

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        with counters.lock:
            e = counters.entry(self)
            e["built"] += 1
            e["cpu_s"] += self.cpu_s     # data loading and model building count too

    def train_steps(self: Any, n: int) -> int:
        c0, w0 = self.cpu_s, time.perf_counter()
        host = id(self.__dict__.get("host"))
        with counters.lock:
            counters.clashes += bool(counters.in_host.get(host)) and "host" in self.__dict__
            counters.in_host[host] = counters.in_host.get(host, 0) + 1
        try:
            done = real_steps(self, n)
        finally:
            with counters.lock:
                counters.in_host[host] -= 1
        with counters.lock:
            e = counters.entry(self)
            e["steps"] += done
            e["cpu_s"] += self.cpu_s - c0
            e["wall_s"] += time.perf_counter() - w0
            e["last"] = time.time()
        return done

    cls.__init__, cls.train_steps = init, train_steps


def count_script_runs(counters: Counters) -> None:
    """Count Streamlit's script runs by kind, with the CPU seconds of the thread that ran
    them: a session's first run (``load``), later full runs (``rerun``: a Start click)
    and fragment runs (``fragment``: the live polls), which go into the profile when given."""
    from streamlit.runtime.scriptrunner import script_runner

    kinds = counters.scripts
    kinds.update({k: {"n": 0, "cpu_s": 0.0, "wall_s": 0.0} for k in ("load", "rerun", "fragment")})
    real = script_runner.ScriptRunner._run_script
    seen: set[str] = set()          # by session: a session's later runs may get a new runner
    profile = counters.profile

    def run(self: Any, rerun_data: Any) -> None:
        if rerun_data.fragment_id_queue:
            kind = "fragment"
        else:
            kind = "rerun" if self._session_id in seen else "load"
            seen.add(self._session_id)
        prof = cProfile.Profile(time.thread_time) if profile is not None and kind == "fragment" else None
        c0, w0 = time.thread_time(), time.perf_counter()
        try:
            if prof is not None:
                prof.enable()           # this thread only: the poll, not the trainers
            real(self, rerun_data)
        finally:
            if prof is not None:
                prof.disable()
            with counters.lock:
                k = kinds[kind]
                k["n"] += 1
                k["cpu_s"] += time.thread_time() - c0
                k["wall_s"] += time.perf_counter() - w0
            if prof is not None:
                profile.add(prof)

    script_runner.ScriptRunner._run_script = run


def capture_services(counters: Counters) -> None:
    """Keep every ``Services`` the app builds, to read its queue and reaper."""
    from resnet_viz.serve import services as services_mod
    real_build = services_mod.build_services

    def build_services(*args: Any, **kwargs: Any) -> Any:
        svc = real_build(*args, **kwargs)
        counters.services.append(svc)
        return svc

    services_mod.build_services = build_services   # before the app imports it


def what_if(what: str) -> None:
    """Experiments on the server, to size a fix before anyone writes it (``--what-if``).

    - ``poll=S``: live pages refresh every S seconds instead of ``serve.reaper.poll_every``.
    """
    if what.startswith("poll="):
        from resnet_viz.ui import live
        live.poll.__defaults__ = (float(what.split("=", 1)[1]),)
    else:
        raise SystemExit(f"unknown --what-if {what!r}")


def serve(counters_path: str, streamlit_args: list[str]) -> None:
    """Run Streamlit in this process with the bench's counters (see the module doc)."""
    sys.path.insert(0, str(ROOT))
    if os.environ.get("BENCH_SWITCH_INTERVAL"):        # what-if: --switch-interval
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
    from resnet_viz.serve.workers import ProcessTrainer
    from resnet_viz.train.trainer import Trainer

    profile = PollProfile(os.environ["BENCH_PROFILE_POLLS"]) if os.environ.get("BENCH_PROFILE_POLLS") else None
    counters = Counters(counters_path, profile)
    count_trainers(Trainer, counters)
    count_trainers(ProcessTrainer, counters)
    count_script_runs(counters)
    capture_services(counters)
    threading.Thread(target=counters.dump_forever, name="bench-counters", daemon=True).start()
    for change in filter(None, os.environ.get("BENCH_WHATIF", "").split(",")):
        what_if(change)
    from streamlit.web import cli as stcli
    sys.argv = ["streamlit", *streamlit_args]
    stcli.main()
