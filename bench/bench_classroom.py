"""Load benchmark: a class of students on one small server (issue 5).

Starts ``streamlit run app.py`` on a free port with a fresh data directory and teacher
config, then drives real Chromium pages (one browser, one context per student):

1. **single user**: one session opens the Train & compare page with a small preset spec
   (``SHARED`` below, but another seed: the same cost, not in the cache) and presses Start;
   we time the page load and how long until both runs of the pair show as finished.
   It does so ``--singles`` times (new seeds); the median is the single-user baseline.
   Then it leaves, and the server's memory (the process and its trainer hosts) once the
   reaper has released it, and ``--settle`` s later, is the baseline.
2. **class**: ``--sessions`` students open the *same* preset URL and press Start, while
   ``--others`` students start specs of their own (other seeds and datasets, the same
   size). Arrivals are spread over ``--ramp`` seconds, as in a room.
3. **leave**: every context closes; we wait for the session reaper to release them all and
   read the server's memory and thread count again.

Training compute is counted inside the server: ``--serve`` (used internally) runs Streamlit
in this process after wrapping ``__init__`` / ``train_steps`` of ``Trainer`` and of the
worker-process proxy ``ProcessTrainer`` with counters (jobs built, steps and the CPU seconds
the trainer reports, its host's when it trains in a worker process, per spec hash), and
after capturing the ``Services`` to read the queue and reaper stats; the counters go to a
JSON file twice a second. The app
code itself is untouched. The run store is read at the end as a cross-check.

Targets (issue 5): compute (training steps and nets built; their CPU seconds are reported
too) for the 30 identical sessions <= 1.2x one session; p95
time-to-result of those sessions <= 2x single-user; server memory bounded and back near the
baseline after the sessions leave.

    .venv/bin/python bench/bench_classroom.py [--sessions 30] [--others 5] [--json PATH]
        [--steps 1000] [--singles 3] [--ramp 3] [--timeout 900] [--leave-timeout 120]

The browser, the server and the training all share this machine's cores, so the numbers
are those of a worst case: a class whose browsers run on the server. Check ``uptime``
first; the load average before and after is part of the result.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
# The preset every student of the class opens: the Train & compare pair on a 2-D toy set.
SHARED = {"dataset": "spirals", "depth": "8", "width": "32"}
SINGLE_SEED = 1000                       # the single user's seed: same cost, not cached for the class
OTHER_DATASETS = ("moons", "circles", "xor", "gaussians", "spirals")
# What the page shows for an ended run (figures.training.progress_summary, via live.status_ui).
ENDED_RE = r"(finished [\d,]+ steps on|diverged at step|stopped at step)"
DONE_JS = ("() => (document.body.textContent.match(/" + ENDED_RE + "/g) || []).length >= 2")
PAGE_PATH = "train"                      # st.Page("pages/train.py") is served at /train
TRACE = bool(os.environ.get("BENCH_TRACE"))   # ws clients keep a message trace in the results
START = ".st-key-start button, .st-key-start_anyway button"
# After the last result, tabs stay this long before the class leaves: the page redraws once
# more after a run ends (boundaries, shelf), and a tab that left at once would skip that work
# in the single-user phase and leave its first-use cost (imports) to the class.
LINGER_S = 3.0


# ---------------------------------------------------------------------------------------
# Inside the server process: counters around the trainer, then Streamlit itself.
# ---------------------------------------------------------------------------------------
def serve(counters_path: str, streamlit_args: list[str]) -> None:
    """Run Streamlit in this process with training counters (see the module doc)."""
    sys.path.insert(0, str(ROOT))
    if os.environ.get("BENCH_SWITCH_INTERVAL"):        # what-if: --switch-interval
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
    from resnet_viz import services as services_mod
    from resnet_viz import procs, training

    lock = threading.Lock()
    per_key: dict[str, dict[str, float]] = {}
    captured: list[Any] = []
    # Chunks that asked a worker process for training while it trained another run's
    # chunk: two runs sharing one process (one core) while the other core may idle.
    in_host: dict[int, int] = {}
    clashes = [0]

    def entry(trainer: Any) -> dict[str, float]:
        key = trainer.__dict__.get("_bench_key")
        if key is None:
            key = trainer._bench_key = trainer.spec.spec_hash()
        return per_key.setdefault(key, {"built": 0, "steps": 0, "cpu_s": 0.0, "wall_s": 0.0,
                                        "first": time.time(), "last": time.time()})

    def count(cls: Any) -> None:
        """Count builds, steps and CPU time (``cpu_s``: the host's when training runs in a
        worker process, this thread's otherwise) of every trainer of class ``cls``."""
        real_init, real_steps = cls.__init__, cls.train_steps

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            real_init(self, *args, **kwargs)
            with lock:
                e = entry(self)
                e["built"] += 1
                e["cpu_s"] += self.cpu_s     # data loading and model building count too

        def train_steps(self: Any, n: int) -> int:
            c0, w0 = self.cpu_s, time.perf_counter()
            host = id(self.__dict__.get("host"))
            with lock:
                clashes[0] += bool(in_host.get(host)) and "host" in self.__dict__
                in_host[host] = in_host.get(host, 0) + 1
            try:
                done = real_steps(self, n)
            finally:
                with lock:
                    in_host[host] -= 1
            with lock:
                e = entry(self)
                e["steps"] += done
                e["cpu_s"] += self.cpu_s - c0
                e["wall_s"] += time.perf_counter() - w0
                e["last"] = time.time()
            return done

        cls.__init__, cls.train_steps = init, train_steps

    count(training.Trainer)
    count(procs.ProcessTrainer)
    profile = PollProfile(os.environ["BENCH_PROFILE_POLLS"]) if os.environ.get("BENCH_PROFILE_POLLS") else None
    scripts = _count_script_runs(lock, profile)
    real_build = services_mod.build_services

    def build_services(*args: Any, **kwargs: Any) -> Any:
        svc = real_build(*args, **kwargs)
        captured.append(svc)
        return svc

    services_mod.build_services = build_services

    main_clock = time.pthread_getcpuclockid(threading.main_thread().ident)   # the event loop

    def dump() -> None:
        while True:
            with lock:
                doc: dict[str, Any] = {"per_key": {k: dict(v) for k, v in per_key.items()},
                                       "host_clashes": clashes[0],
                                       "scripts": {k: dict(v) for k, v in scripts.items()}}
            doc["event_loop_cpu_s"] = time.clock_gettime(main_clock)
            if captured:
                svc = captured[-1]
                doc["queue"] = svc.queue.stats()
                doc["reaper"] = {"tracked": svc.reaper.tracked(), "released": svc.reaper.released}
            doc["threads"] = threading.active_count()
            names: dict[str, int] = {}
            for t in threading.enumerate():   # "ScriptRunner", "resnet-viz-worker-0", ...
                base = re.sub(r"[-_ ]?\d+$", "", t.name.split(" (")[0])
                names[base] = names.get(base, 0) + 1
            doc["thread_names"] = names
            doc["time"] = time.time()
            tmp = counters_path + ".tmp"
            Path(tmp).write_text(json.dumps(doc))
            os.replace(tmp, counters_path)
            if profile is not None:
                profile.save()          # the server is killed at the end: save as we go
            time.sleep(0.5)

    threading.Thread(target=dump, name="bench-counters", daemon=True).start()
    for what in filter(None, os.environ.get("BENCH_WHATIF", "").split(",")):
        _what_if(what)
    from streamlit.web import cli as stcli
    sys.argv = ["streamlit", *streamlit_args]
    stcli.main()


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


def _count_script_runs(lock: threading.Lock, profile: PollProfile | None = None) -> dict[str, dict[str, float]]:
    """Count Streamlit's script runs by kind, with the CPU seconds of the thread that ran
    them: a session's first run (``load``), later full runs (``rerun``: a Start click)
    and fragment runs (``fragment``: the live polls), which go into ``profile`` when given."""
    from streamlit.runtime.scriptrunner import script_runner

    kinds: dict[str, dict[str, float]] = {k: {"n": 0, "cpu_s": 0.0, "wall_s": 0.0}
                                          for k in ("load", "rerun", "fragment")}
    real = script_runner.ScriptRunner._run_script
    seen: set[str] = set()          # by session: a session's later runs may get a new runner

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
            with lock:
                k = kinds[kind]
                k["n"] += 1
                k["cpu_s"] += time.thread_time() - c0
                k["wall_s"] += time.perf_counter() - w0
            if prof is not None:
                profile.add(prof)

    script_runner.ScriptRunner._run_script = run
    return kinds


def _what_if(what: str) -> None:
    """Experiments on the server, to size a fix before anyone writes it (``--what-if``).

    - ``poll=S``: live pages refresh every S seconds instead of ``heartbeat.poll_every``.
    """
    if what.startswith("poll="):
        from pages import live
        live.poll.__defaults__ = (float(what.split("=", 1)[1]),)
    else:
        raise SystemExit(f"unknown --what-if {what!r}")


# ---------------------------------------------------------------------------------------
# /proc helpers (no psutil in the venv)
# ---------------------------------------------------------------------------------------
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
TICK = os.sysconf("SC_CLK_TCK")


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    kids, out, todo = _children_map(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def rss_mb(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total * PAGE_KB / 1024


def rss_by_process(pid: int) -> dict[str, float]:
    """RSS (MB) of ``pid`` ("server") and each descendant (trainer hosts by pid)."""
    out: dict[str, float] = {}
    for p in tree(pid):
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes()
        except OSError:
            continue
        name = "server" if p == pid else (f"host-{p}" if b"resnet_viz.host" in cmd else f"child-{p}")
        out[name] = round(rss_mb([p]), 1)
    return out


def cpu_s(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])            # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


def n_threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------
class Server:
    """``streamlit run app.py`` (through ``serve``) on a free port with a fresh data dir."""

    def __init__(self, workdir: Path, port: int, switch_interval: float | None = None,
                 config_extra: str = "", st_flags: list[str] | None = None,
                 what_if: list[str] | None = None, profile_polls: str | None = None) -> None:
        self.workdir, self.port = workdir, port
        self.url = f"http://127.0.0.1:{port}"
        self.counters = workdir / "counters.json"
        self.log = workdir / "server.log"
        data = workdir / "data"
        data.mkdir()
        self.config = workdir / "classroom.toml"
        self.config.write_text(f'data_dir = "{data}"\n{config_extra}')  # the rest: defaults
        self.data = data
        env = {**os.environ, "RESNET_VIZ_CONFIG": str(self.config), "PYTHONUNBUFFERED": "1"}
        if switch_interval:
            env["BENCH_SWITCH_INTERVAL"] = str(switch_interval)
        if what_if:
            env["BENCH_WHATIF"] = ",".join(what_if)
        if profile_polls:
            env["BENCH_PROFILE_POLLS"] = str(Path(profile_polls).resolve())
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", str(self.counters), "--",
               "run", "app.py", "--server.headless", "true", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
        for flag in st_flags or []:                 # what-if: e.g. runner.postScriptGC=true (the old default)
            key, _, value = flag.partition("=")
            cmd += [f"--{key}", value]
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited early; see {self.log}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s")

    def pids(self) -> list[int]:
        return tree(self.proc.pid)

    def rss(self) -> float:
        return rss_mb(self.pids())

    def cpu(self) -> float:
        return cpu_s(self.pids())

    def stats(self) -> dict[str, Any]:
        try:
            return json.loads(self.counters.read_text())
        except (OSError, ValueError):
            return {}

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def tracebacks(self) -> int:
        try:
            return self.log.read_text(errors="replace").count("Traceback")
        except OSError:
            return 0

    def errors(self) -> dict[str, int]:
        """The last line of each traceback in the server log, counted."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return {}
        out: dict[str, int] = {}
        for i, line in enumerate(lines):
            if line.startswith("Traceback"):
                j = i + 1
                while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                    j += 1
                last = lines[j][:160] if j < len(lines) else "?"
                out[last] = out.get(last, 0) + 1
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)   # its own session: only our server
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


def wait_until(pred: Any, timeout: float, every: float = 0.5) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(every)
    return bool(pred())


# ---------------------------------------------------------------------------------------
# Students
# ---------------------------------------------------------------------------------------
def url_for(base: str, params: dict[str, str]) -> str:
    return f"{base}/{PAGE_PATH}?" + "&".join(f"{k}={v}" for k, v in params.items())


async def student(browser: Any, url: str, delay: float, timeout: float, record: dict[str, Any],
                  contexts: list[Any]) -> None:
    """Open ``url``, press Start, wait until both runs of the pair show as ended."""
    await asyncio.sleep(delay)
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    contexts.append(ctx)
    page = await ctx.new_page()
    record.update(url=url, ok=False)
    try:
        t0 = time.perf_counter()
        await page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
        start = page.locator(START).first
        await start.wait_for(state="visible", timeout=timeout * 1000)
        record["load_s"] = time.perf_counter() - t0
        await start.click(timeout=timeout * 1000)
        anyway = page.locator(".st-key-start_anyway button")
        try:  # a "big" run asks for a second click (BIG_RUN_S); ours should not
            await anyway.wait_for(state="visible", timeout=1500)
            await anyway.click()
            record["confirmed"] = True
        except Exception:
            pass
        t1 = time.perf_counter()
        await page.wait_for_function(DONE_JS, timeout=timeout * 1000, polling=250)
        record["result_s"] = time.perf_counter() - t1
        record["since_open_s"] = time.perf_counter() - t0
        text = await page.evaluate("() => document.body.textContent")
        record["ended"] = re.findall(ENDED_RE + r"[^·(]{0,40}", text)[:2]
        record["shared_note"] = "computed once" in text
        record["errors"] = [m for m in ("Could not start", "Traceback", "could not train")
                            if m in text]
        record["ok"] = not record["errors"]
    except Exception as err:  # one student's failure is a result, not a crash of the bench
        record["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"


async def ws_student(server_url: str, params: dict[str, str], delay: float, timeout: float,
                     record: dict[str, Any], hold: asyncio.Event) -> None:
    """The browser's side of Streamlit's protocol over one WebSocket, without rendering.

    Sends the page run (``rerun_script`` with the page name and query string), finds the
    Start button's widget id in the deltas, "clicks" it (a trigger value), re-runs the live
    fragment whenever the server asks (``auto_rerun``, as the frontend does), and watches
    the deltas for two ended runs. Then it waits for ``hold`` and closes, like a tab.
    """
    import urllib.parse

    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    await asyncio.sleep(delay)
    query = urllib.parse.urlencode(params)
    record.update(url=f"{server_url}/{PAGE_PATH}?{query}", ok=False)
    ended = re.compile(ENDED_RE.encode())
    loop_tasks: dict[str, asyncio.Task] = {}

    page_hash = [""]          # from the navigation message, sent back with every run (as the frontend)

    def rerun(widgets: list[Any] | None = None, fragment_id: str = "") -> bytes:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string, cs.page_name, cs.page_script_hash = query, PAGE_PATH, page_hash[0]
        if fragment_id:
            cs.fragment_id, cs.is_auto_rerun = fragment_id, True
        for w in widgets or []:
            cs.widget_states.widgets.append(w)
        return msg.SerializeToString()

    counts = record.setdefault("messages", {"received": 0, "fragment_reruns_sent": 0, "full_runs": 0})

    async def auto(ws: Any, fragment_id: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await ws.send(rerun(fragment_id=fragment_id))
            counts["fragment_reruns_sent"] += 1

    ws_url = server_url.replace("http://", "ws://") + "/_stcore/stream"
    t0 = time.perf_counter()
    try:
        async with websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None,
                                      open_timeout=timeout, ping_interval=None) as ws:
            await ws.send(rerun())
            start_id, clicked, seen, pressed = None, None, 0, set()
            deadline = time.perf_counter() + timeout
            while not (record["ok"] and hold.is_set()):
                # After the result the tab stays a tab: it answers the server's polls and
                # reruns (the page redraws once more after the end) until the class leaves.
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except asyncio.TimeoutError:
                    if not record["ok"] and time.perf_counter() > deadline:
                        raise
                    continue
                msg = ForwardMsg()
                msg.ParseFromString(raw)
                kind = msg.WhichOneof("type")
                counts["received"] += 1
                if TRACE:
                    el = msg.delta.new_element.WhichOneof("type") if kind == "delta" else ""
                    record.setdefault("trace", []).append(
                        (round(time.perf_counter() - t0, 2), kind, el or "",
                         list(msg.metadata.run.fragment_ids)[:1], [t[:40].decode(errors="replace") for t in
                          re.findall(rb"(?:finished|step \d|waiting|Could not|error)[^\x00-\x1f\"]{0,40}", raw)][:2]))
                if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                    el = msg.delta.new_element
                    if el.WhichOneof("type") == "button" and el.button.id.endswith(("-start", "-start_anyway")):
                        start_id = el.button.id     # a big run asks again: "Start anyway"
                    if clicked is not None and not record["ok"]:
                        seen += len(ended.findall(raw))
                        if seen >= 2:
                            record["result_s"] = time.perf_counter() - clicked
                            record["since_open_s"] = time.perf_counter() - t0
                            record["ok"] = True
                elif kind == "new_session" and not msg.metadata.run.fragment_ids:
                    counts["full_runs"] += 1
                    # A full run starts: the frontend drops every fragment timer here; the
                    # fragments of this run announce themselves again.
                    for task in loop_tasks.values():
                        task.cancel()
                    loop_tasks.clear()
                elif kind == "navigation":         # st.navigation resolved the page
                    page_hash[0] = msg.navigation.page_script_hash
                elif kind == "auto_rerun":
                    fid = msg.auto_rerun.fragment_id
                    if fid not in loop_tasks:
                        loop_tasks[fid] = asyncio.create_task(auto(ws, fid, msg.auto_rerun.interval))
                elif kind == "stop_auto_rerun":
                    for fid in msg.stop_auto_rerun.fragment_ids or list(loop_tasks):
                        task = loop_tasks.pop(fid, None)
                        if task:
                            task.cancel()
                elif kind == "script_finished":
                    if start_id is not None and start_id not in pressed:
                        from streamlit.proto.WidgetStates_pb2 import WidgetState
                        if clicked is None:
                            record["load_s"] = time.perf_counter() - t0
                            clicked = time.perf_counter()
                        pressed.add(start_id)
                        await ws.send(rerun([WidgetState(id=start_id, trigger_value=True)]))
                    seen = 0            # count the two statuses within one run
                elif kind == "session_event" and msg.session_event.WhichOneof("type") == "script_compilation_exception":
                    record["errors"] = ["script compilation exception"]
                    break
            for task in loop_tasks.values():
                task.cancel()
            await hold.wait()       # stay connected until the whole class is done, then close
    except Exception as err:
        record["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        record["ok"] = False


class Sampler:
    """Samples the server's RSS and thread count in the background (peak and timeline)."""

    def __init__(self, server: Server, every: float = 0.5) -> None:
        self.server, self.every = server, every
        self.samples: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - t0, self.server.rss(), n_threads(self.server.proc.pid)))
            self._stop.wait(self.every)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_rss(self) -> float:
        return max((s[1] for s in self.samples), default=0.0)

    @property
    def peak_threads(self) -> int:
        return max((s[2] for s in self.samples), default=0)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def compute_for(stats: dict[str, Any], keys: list[str]) -> dict[str, float]:
    per = stats.get("per_key", {})
    rows = [per[k] for k in keys if k in per]
    return {"jobs_built": sum(r.get("built", 0) for r in rows),
            "steps": sum(r.get("steps", 0) for r in rows),
            "cpu_s": round(sum(r.get("cpu_s", 0.0) for r in rows), 2),
            # server side: from the first trainer built to the last step of the group
            "train_span_s": round(max(r["last"] for r in rows) - min(r["first"] for r in rows), 2)
            if rows else None}


def pair_keys(params: dict[str, str]) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from resnet_viz.session import comparison_pair
    from resnet_viz.spec import parse_spec
    spec, notices = parse_spec(params)
    assert not notices, notices
    return [s.spec_hash() for s in comparison_pair(spec)]


def wait_released(server: Server, timeout: float) -> float:
    """Seconds until the reaper tracks no session (and nothing is queued or running)."""
    t0 = time.monotonic()

    def idle() -> bool:
        s = server.stats()
        q, r = s.get("queue", {}), s.get("reaper", {})
        return r.get("tracked", 1) == 0 and q.get("running", 1) == 0 and q.get("queued", 1) == 0

    wait_until(idle, timeout)
    return time.monotonic() - t0


async def run_phase(server: Server, urls: list[str], ramp: float, timeout: float,
                    leave_timeout: float, seed: int, clients: str = "browser") -> dict[str, Any]:
    """Students open ``urls`` (spread over ``ramp`` s), get their results, then all leave."""
    if clients == "ws":
        return await run_phase_ws(server, urls, ramp, timeout, leave_timeout, seed)
    from playwright.async_api import async_playwright

    rng = random.Random(seed)
    delays = sorted(rng.uniform(0, ramp) for _ in urls) if len(urls) > 1 else [0.0]
    order = list(range(len(urls)))
    rng.shuffle(order)
    records: list[dict[str, Any]] = [{} for _ in urls]
    contexts: list[Any] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        client_pids = lambda: [p for p in tree(os.getpid()) if p != os.getpid() and p != server.proc.pid
                               and p not in server.pids()]
        c_cpu0, s_cpu0, before = cpu_s(client_pids()), server.cpu(), server.stats()
        t0 = time.perf_counter()
        with Sampler(server) as sampler:
            await asyncio.gather(*(student(browser, urls[i], delays[j], timeout, records[i], contexts)
                                   for j, i in enumerate(order)))
            makespan = time.perf_counter() - t0
            client_rss = rss_mb(client_pids())
            c_cpu1, s_cpu1 = cpu_s(client_pids()), server.cpu()
            during = server.stats()
            rss_with_sessions = server.rss()
            await asyncio.sleep(LINGER_S)    # tabs stay for the page's redraw after the end
            for ctx in contexts:             # every tab closes
                await ctx.close()
            await browser.close()
            released_s = await asyncio.to_thread(wait_released, server, leave_timeout)
    return {"records": records, "makespan_s": makespan, "peak_rss_mb": sampler.peak_rss,
            "peak_threads": sampler.peak_threads, "rss_with_sessions_mb": rss_with_sessions,
            "client_rss_mb": client_rss, "client_cpu_s": c_cpu1 - c_cpu0,
            "server_cpu_s": s_cpu1 - s_cpu0, "stats_during": during,
            "server_work": server_work(before, during),
            "released_after_s": released_s, "stats_after": server.stats(),
            "rss_after_mb": server.rss(), "rss_by_process": rss_by_process(server.proc.pid),
            "threads_after": n_threads(server.proc.pid)}


async def run_phase_ws(server: Server, urls: list[str], ramp: float, timeout: float,
                       leave_timeout: float, seed: int) -> dict[str, Any]:
    """``run_phase`` with WebSocket clients instead of browser pages."""
    rng = random.Random(seed)
    delays = sorted(rng.uniform(0, ramp) for _ in urls) if len(urls) > 1 else [0.0]
    order = list(range(len(urls)))
    rng.shuffle(order)
    records: list[dict[str, Any]] = [{} for _ in urls]
    params = [dict(p.split("=", 1) for p in u.split("?", 1)[1].split("&")) for u in urls]
    hold = asyncio.Event()
    c_cpu0, s_cpu0, before = cpu_s([os.getpid()]), server.cpu(), server.stats()
    t0 = time.perf_counter()
    with Sampler(server) as sampler:
        tasks = [asyncio.create_task(ws_student(server.url, params[i], delays[j], timeout, records[i], hold))
                 for j, i in enumerate(order)]
        while not all("ok" in r and ("result_s" in r or "error" in r or "errors" in r) for r in records):
            await asyncio.sleep(0.1)
            if all(t.done() for t in tasks):
                break
        makespan = time.perf_counter() - t0
        c_cpu1, s_cpu1 = cpu_s([os.getpid()]), server.cpu()
        during = server.stats()
        rss_with_sessions = server.rss()
        await asyncio.sleep(LINGER_S)            # tabs stay for the page's redraw after the end
        hold.set()                               # every tab closes
        await asyncio.gather(*tasks)
        released_s = await asyncio.to_thread(wait_released, server, leave_timeout)
    return {"records": records, "makespan_s": makespan, "peak_rss_mb": sampler.peak_rss,
            "peak_threads": sampler.peak_threads, "rss_with_sessions_mb": rss_with_sessions,
            "client_rss_mb": rss_mb([os.getpid()]), "client_cpu_s": c_cpu1 - c_cpu0,
            "server_cpu_s": s_cpu1 - s_cpu0, "stats_during": during,
            "server_work": server_work(before, during),
            "released_after_s": released_s, "stats_after": server.stats(),
            "rss_after_mb": server.rss(), "rss_by_process": rss_by_process(server.proc.pid),
            "threads_after": n_threads(server.proc.pid)}


def server_work(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The server's script runs (by kind) and event-loop CPU seconds between two readings."""
    b, a = before.get("scripts", {}), after.get("scripts", {})
    return {"scripts": {k: {f: round(a[k][f] - b.get(k, {}).get(f, 0), 3) for f in a[k]} for k in a},
            "event_loop_cpu_s": round(after.get("event_loop_cpu_s", 0.0)
                                      - before.get("event_loop_cpu_s", 0.0), 2)}


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in records if r.get("ok")]
    loads = [r["load_s"] for r in records if "load_s" in r]
    results = [r["result_s"] for r in ok]
    return {"n": len(records), "ok": len(ok),
            "failed": [r.get("error") or r.get("errors") for r in records if not r.get("ok")][:5],
            "load_p50_s": pct(loads, 0.5), "load_p95_s": pct(loads, 0.95), "load_max_s": max(loads, default=None),
            "result_p50_s": pct(results, 0.5), "result_p95_s": pct(results, 0.95),
            "result_max_s": max(results, default=None),
            "since_open_max_s": max((r["since_open_s"] for r in ok), default=None)}


def fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "-"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve"]:
        sep = argv.index("--")
        serve(argv[1], argv[sep + 1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=30, help="students opening the same preset")
    ap.add_argument("--others", type=int, default=5, help="students starting specs of their own")
    ap.add_argument("--steps", type=int, default=1000, help="training steps of each run")
    ap.add_argument("--ramp", type=float, default=3.0, help="arrivals spread over this many seconds")
    ap.add_argument("--timeout", type=float, default=900.0, help="per-student time limit (s)")
    ap.add_argument("--leave-timeout", type=float, default=120.0, help="wait for the reaper (s)")
    ap.add_argument("--settle", type=float, default=170.0,
                    help="after the reaper, wait this long and read memory again (0: skip)")
    ap.add_argument("--waves", type=int, default=1,
                    help="run the class this many times (new seeds), memory read after each "
                         "(needs --settle > 0)")
    ap.add_argument("--singles", type=int, default=3,
                    help="single-user runs (new seeds, one after another); the baseline is their median")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="measure the single user on a cold server")
    ap.add_argument("--clients", choices=("browser", "ws"), default="browser",
                    help="real Chromium pages, or Streamlit WebSocket clients (no rendering)")
    ap.add_argument("--jobs", type=int, help="teacher config max_concurrent_jobs (default: cores)")
    ap.add_argument("--worker-threads", action="store_true",
                    help="teacher config worker_processes = false: train in server threads")
    ap.add_argument("--switch-interval", type=float,
                    help="what-if: sys.setswitchinterval in the server (Python's default 0.005 s)")
    ap.add_argument("--st-flag", action="append", default=[], metavar="OPTION=VALUE",
                    help="what-if: an extra Streamlit option, e.g. runner.postScriptGC=true (the old default)")
    ap.add_argument("--what-if", action="append", default=[], metavar="CHANGE",
                    help="what-if in the server: poll=SECONDS (see _what_if)")
    ap.add_argument("--profile-polls", metavar="FILE",
                    help="cProfile the server's live polls (fragment runs, thread CPU time) into FILE (pstats)")
    ap.add_argument("--seed", type=int, default=0, help="arrival order and jitter")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (server log, store)")
    args = ap.parse_args(argv)

    shared = {**SHARED, "steps": str(args.steps)}
    singles = [{**shared, "seed": str(SINGLE_SEED + i)} for i in range(max(1, args.singles))]
    others = [{**shared, "dataset": OTHER_DATASETS[i % len(OTHER_DATASETS)], "seed": str(i + 1)}
              for i in range(args.others)]
    def _terminate(signum: int, _frame: Any) -> None:   # `timeout` or Ctrl-C: stop the server too
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, _terminate)
    workdir = Path(tempfile.mkdtemp(prefix="bench_classroom_"))
    load_before = loadavg()
    print(f"load average before: {load_before}  (cores: {os.cpu_count()})", flush=True)
    server = Server(workdir, free_port(), args.switch_interval,
                    (f"max_concurrent_jobs = {args.jobs}\n" if args.jobs else "")
                    + ("worker_processes = false\n" if args.worker_threads else ""), args.st_flag,
                    args.what_if, args.profile_polls)
    out: dict[str, Any] = {"clients": args.clients, "sessions": args.sessions, "others": args.others, "steps": args.steps,
                           "shared_params": shared, "load_before": load_before,
                           "jobs": args.jobs, "worker_threads": args.worker_threads, "switch_interval": args.switch_interval,
                           "st_flags": args.st_flag, "what_if": args.what_if,
                           "cores": len(os.sched_getaffinity(0))}
    try:
        t = time.perf_counter()
        server.wait_healthy()
        out["server_start_s"] = time.perf_counter() - t
        out["rss_idle_mb"] = server.rss()
        out["threads_idle"] = n_threads(server.proc.pid)

        if args.warmup:
            # The teacher tries the app before class: imports and first kernels are paid
            # here, not by the single user we compare against.
            print("phase 0: warm-up (one session, a tiny run) ...", flush=True)
            warm = asyncio.run(run_phase(server, [url_for(server.url, {**SHARED, "steps": "20",
                                                                      "seed": "999"})],
                                         0.0, args.timeout, args.leave_timeout, args.seed, args.clients))
            out["warmup"] = summarise(warm["records"])

        # One single user is one sample of a noisy machine (3.2 to 4.6 s for the same pair
        # in one stop's runs): the baseline is the median of a few, one after another.
        print(f"phase 1: a single user alone ({len(singles)} times) ...", flush=True)
        ones = [asyncio.run(run_phase(server, [url_for(server.url, single)], 0.0, args.timeout,
                                      args.leave_timeout, args.seed, args.clients)) for single in singles]
        one = ones[-1]
        computes = [compute_for(one["stats_after"], pair_keys(single)) for single in singles]
        single_compute = {k: pct([c[k] for c in computes if c[k] is not None], 0.5) for k in computes[0]}
        out["single"] = {**summarise([r for o in ones for r in o["records"]]),
                         **{k: v for k, v in one.items() if k != "records"},
                         "compute": single_compute, "computes": computes,
                         "results_s": [r.get("result_s") for o in ones for r in o["records"]]}
        out["rss_baseline_mb"] = one["rss_after_mb"]       # warm: torch and the app imported
        out["threads_baseline"] = one["threads_after"]
        if args.settle > 0:
            # The same wait as after the class, so both readings see the same clean-up
            # (Streamlit's session TTL, the reaper's memory trim once the server is quiet).
            print(f"waiting {args.settle:.0f} s for the single user's session to expire ...", flush=True)
            time.sleep(args.settle)
            out["rss_baseline_mb"] = server.rss()
            out["rss_by_process_baseline"] = rss_by_process(server.proc.pid)

        print(f"phase 2: {args.sessions} students on one preset + {args.others} on their own ...",
              flush=True)
        def class_urls(seed_offset: int) -> list[str]:
            return [url_for(server.url, {**p, "seed": str(int(p.get("seed", 0)) + seed_offset)})
                    for p in [shared] * args.sessions + others]

        urls = class_urls(0)
        cls = asyncio.run(run_phase(server, urls, args.ramp, args.timeout, args.leave_timeout,
                                    args.seed, args.clients))
        recs = cls["records"]
        shared_recs, other_recs = recs[:args.sessions], recs[args.sessions:]
        stats = cls["stats_after"]
        shared_compute = compute_for(stats, pair_keys(shared))
        others_compute = compute_for(stats, [k for p in others for k in pair_keys(p)])
        out["class"] = {"all": summarise(recs), "shared": summarise(shared_recs),
                        "others": summarise(other_recs),
                        **{k: v for k, v in cls.items() if k != "records"},
                        "compute_shared": shared_compute, "compute_others": others_compute,
                        "jobs_built_total": sum(v.get("built", 0) for v in stats.get("per_key", {}).values())
                        - sum(c["jobs_built"] for c in computes),
                        "records": recs}
        # Cross-check with the run store: one finished record per distinct spec.
        sys.path.insert(0, str(ROOT))
        from resnet_viz.store import RunStore
        store = RunStore(server.data)
        rows = store.list(limit=1000)
        out["store"] = {"runs": len(rows), "statuses": sorted({r.status for r in rows})}
        store.close()
        # After leaving: memory once the sessions are released.
        out["rss_after_leave_mb"] = cls["rss_after_mb"]
        out["threads_after_leave"] = cls["threads_after"]
        if args.settle > 0:
            # Streamlit keeps a disconnected session's state for server.disconnectedSessionTTL
            # (120 s) in case the tab reconnects; memory is read again after that.
            print(f"waiting {args.settle:.0f} s for disconnected sessions to expire ...", flush=True)
            time.sleep(args.settle)
            out["rss_after_settle_mb"] = server.rss()
            out["rss_by_process_after_settle"] = rss_by_process(server.proc.pid)
            out["threads_after_settle"] = n_threads(server.proc.pid)
            out["stats_after_settle"] = server.stats()
            out["waves_rss_mb"] = [out["rss_after_settle_mb"]]
            for wave in range(1, args.waves):       # bounded, or growing with every class?
                print(f"wave {wave + 1}: the class again, new seeds ...", flush=True)
                asyncio.run(run_phase(server, class_urls(100 * wave), args.ramp, args.timeout, args.leave_timeout,
                                      args.seed + wave, args.clients))
                time.sleep(args.settle)
                out["waves_rss_mb"].append(server.rss())
        out["tracebacks_in_server_log"] = server.tracebacks()
        out["server_errors"] = server.errors()
    finally:
        server.stop()
        out["load_after"] = loadavg()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            out["workdir"] = str(workdir)

    s, c = out["single"], out["class"]
    # Compute is the training work done: steps trained and nets built, each of them the same
    # size here. Its CPU seconds are shown too, but they also measure the contention: the
    # same 2,000 steps took 3.98 to 6.71 CPU s alone on this VM in one stop's runs.
    ratio_compute = max(c["compute_shared"]["steps"] / s["compute"]["steps"],
                        c["compute_shared"]["jobs_built"] / s["compute"]["jobs_built"]) \
        if s["compute"]["steps"] and s["compute"]["jobs_built"] else None
    ratio_cpu = (c["compute_shared"]["cpu_s"] / s["compute"]["cpu_s"]) if s["compute"]["cpu_s"] else None
    ratio_p95 = (c["shared"]["result_p95_s"] / s["result_p50_s"]) \
        if c["shared"]["result_p95_s"] and s["result_p50_s"] else None
    after = out.get("rss_after_settle_mb", out["rss_after_leave_mb"])
    growth = after - out["rss_baseline_mb"]
    out["targets"] = {
        "compute_ratio": ratio_compute, "compute_ok": ratio_compute is not None and ratio_compute <= 1.2,
        "cpu_ratio": ratio_cpu,
        "p95_ratio": ratio_p95, "p95_ok": ratio_p95 is not None and ratio_p95 <= 2.0,
        "rss_growth_after_leave_mb": growth,
        # Back to baseline: within 50 MB, or 5% of the warm baseline on a big server.
        "memory_ok": growth <= max(50.0, 0.05 * out["rss_baseline_mb"]),
    }
    rows = [
        ("sessions ok (shared / others)", f"{c['shared']['ok']}/{c['shared']['n']} / {c['others']['ok']}/{c['others']['n']}", ""),
        ("single user: page load / time-to-result (s)", f"{fmt(s['load_p50_s'])} / {fmt(s['result_p50_s'])}",
         "median of " + ", ".join(fmt(v) for v in s.get("results_s", []))),
        ("class: page load p50 / p95 / max (s)", f"{fmt(c['all']['load_p50_s'])} / {fmt(c['all']['load_p95_s'])} / {fmt(c['all']['load_max_s'])}", ""),
        ("shared: time-to-result p50 / p95 / max (s)", f"{fmt(c['shared']['result_p50_s'])} / {fmt(c['shared']['result_p95_s'])} / {fmt(c['shared']['result_max_s'])}",
         f"p95 = {fmt(ratio_p95, 2)}x single (target <= 2)"),
        ("others: time-to-result p50 / max (s)", f"{fmt(c['others']['result_p50_s'])} / {fmt(c['others']['result_max_s'])}", ""),
        ("every session done (makespan, s)", fmt(c["makespan_s"]), ""),
        ("jobs trained: single / shared / others", f"{s['compute']['jobs_built']:.0f} / {c['compute_shared']['jobs_built']} / {c['compute_others']['jobs_built']}", ""),
        ("training CPU s: single / shared group", f"{fmt(s['compute']['cpu_s'], 2)} / {fmt(c['compute_shared']['cpu_s'], 2)}",
         f"{fmt(ratio_cpu, 2)}x"),
        ("pair trained in (server side, s): single / shared", f"{fmt(s['compute']['train_span_s'])} / {fmt(c['compute_shared']['train_span_s'])}", ""),
        ("chunks that waited for a busy trainer process", str(c["stats_during"].get("host_clashes", "-")), ""),
        ("training steps: single / shared group", f"{s['compute']['steps']:.0f} / {c['compute_shared']['steps']}",
         f"compute {fmt(ratio_compute, 2)}x (steps and nets built; target <= 1.2)"),
        ("server CPU s during class (all work)", fmt(c["server_cpu_s"]), f"browsers: {fmt(c['client_cpu_s'])} CPU s"),
        ("  script runs: loads / reruns / polls (n, CPU s)", " / ".join(
            f"{w['n']:.0f}, {w['cpu_s']:.1f}" for w in c["server_work"]["scripts"].values()),
         f"event loop {fmt(c['server_work']['event_loop_cpu_s'])} CPU s"),
        ("server RSS MB: idle / warm baseline / peak", f"{fmt(out['rss_idle_mb'], 0)} / {fmt(out['rss_baseline_mb'], 0)} / {fmt(c['peak_rss_mb'], 0)}", ""),
        ("server RSS MB after all left: released / settled", f"{fmt(out['rss_after_leave_mb'], 0)} / {fmt(out.get('rss_after_settle_mb'), 0)}",
         f"{growth:+.0f} MB vs baseline ({'ok' if out['targets']['memory_ok'] else 'HIGH'})"),
        ("server RSS MB after each class wave", " / ".join(fmt(v, 0) for v in out.get("waves_rss_mb", [])), ""),
        ("server threads: baseline / peak / released / settled", f"{out['threads_baseline']} / {c['peak_threads']} / {out['threads_after_leave']} / {out.get('threads_after_settle', '-')}", ""),
        ("sessions released by the reaper after", f"{fmt(c['released_after_s'])} s", ""),
        ("tracebacks in the server log", str(out["tracebacks_in_server_log"]), ""),
        ("load average before / after", f"{out['load_before']} / {out['load_after']}", ""),
    ]
    width = max(len(r[0]) for r in rows)
    for name, val, note in rows:
        print(f"{name:<{width}}  {val:<24} {note}")
    for err, n in out.get("server_errors", {}).items():
        print(f"  server log: {n} x {err}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
        print(f"wrote {args.json}")
    return 0 if all(out["targets"][k] for k in ("compute_ok", "p95_ok", "memory_ok")) else 1


if __name__ == "__main__":
    sys.exit(main())
