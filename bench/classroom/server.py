"""The server under test: ``streamlit run app.py`` (through ``--serve``) on a free port."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import psutil

from classroom.constants import ENTRY, ROOT
from classroom.processes import cpu_s, rss_mb, tree


class Server:
    """``streamlit run app.py`` (through ``inside.serve``) on ``port`` with a fresh data dir
    under ``workdir`` and a teacher config (``config_extra`` added to it)."""

    def __init__(self, workdir: Path, port: int, switch_interval: float | None = None,
                 config_extra: str = "", st_flags: list[str] | None = None,
                 what_if: list[str] | None = None, profile_polls: str | None = None) -> None:
        self.workdir, self.port = workdir, port
        self.url = f"http://127.0.0.1:{port}"
        self.counters = workdir / "counters.json"
        self.log = workdir / "server.log"
        self.data = workdir / "data"
        self.data.mkdir()
        self.config = workdir / "classroom.toml"
        self.config.write_text(f'data_dir = "{self.data}"\n{config_extra}')  # the rest: defaults
        env = {**os.environ, "RESNET_VIZ_CONFIG": str(self.config), "PYTHONUNBUFFERED": "1"}
        if switch_interval:
            env["BENCH_SWITCH_INTERVAL"] = str(switch_interval)
        if what_if:
            env["BENCH_WHATIF"] = ",".join(what_if)
        if profile_polls:
            env["BENCH_PROFILE_POLLS"] = str(Path(profile_polls).resolve())
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(self._command(st_flags or []), cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def _command(self, st_flags: list[str]) -> list[str]:
        cmd = [sys.executable, str(ENTRY), "--serve", str(self.counters), "--",
               "run", "app.py", "--server.headless", "true", "--server.port", str(self.port),
               "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
        for flag in st_flags:                 # what-if: e.g. runner.postScriptGC=true (the old default)
            key, _, value = flag.partition("=")
            cmd += [f"--{key}", value]
        return cmd

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

    def procs(self) -> list[psutil.Process]:
        """The server process and its descendants (the trainer hosts)."""
        return tree(self.proc.pid)

    def rss(self) -> float:
        return rss_mb(self.procs())

    def cpu(self) -> float:
        return cpu_s(self.procs())

    def stats(self) -> dict[str, Any]:
        """The counters ``inside.serve`` writes twice a second (empty before the first)."""
        try:
            return json.loads(self.counters.read_text())
        except (OSError, ValueError):
            return {}

    def _log_lines(self) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def tail(self, n: int = 30) -> str:
        return "\n".join(self._log_lines()[-n:])

    def tracebacks(self) -> int:
        return sum(line.count("Traceback") for line in self._log_lines())

    def errors(self) -> dict[str, int]:
        """The last line of each traceback in the server log, counted."""
        lines = self._log_lines()
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


def wait_until(pred: Callable[[], bool], timeout: float, every: float = 0.5) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(every)
    return bool(pred())


def wait_released(server: Server, timeout: float) -> float:
    """Seconds until the reaper tracks no session (and nothing is queued or running)."""
    t0 = time.monotonic()

    def idle() -> bool:
        s = server.stats()
        q, r = s.get("queue", {}), s.get("reaper", {})
        return r.get("tracked", 1) == 0 and q.get("running", 1) == 0 and q.get("queued", 1) == 0

    wait_until(idle, timeout)
    return time.monotonic() - t0
