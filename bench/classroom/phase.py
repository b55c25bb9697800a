"""One phase: students arrive (spread over ``ramp`` s), get their results, then all leave;
the server's memory, threads and CPU time are read around it."""
from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from typing import Any, Callable

import psutil

from classroom.constants import CHROMIUM, CHROMIUM_ARGS, LINGER_S
from classroom.processes import cpu_s, n_threads, rss_by_process, rss_mb
from classroom.server import Server, wait_released


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


class Readings:
    """The server's and the clients' counters at the start of a phase (made now) and once
    every student has a result (:meth:`done`)."""

    def __init__(self, server: Server, clients: Callable[[], list[psutil.Process]]) -> None:
        self.server, self.clients = server, clients
        self.c_cpu0, self.s_cpu0, self.before = cpu_s(clients()), server.cpu(), server.stats()
        self.t0 = time.perf_counter()

    def done(self) -> None:
        self.makespan = time.perf_counter() - self.t0
        self.client_rss = rss_mb(self.clients())
        self.c_cpu1, self.s_cpu1 = cpu_s(self.clients()), self.server.cpu()
        self.during = self.server.stats()
        self.rss_with_sessions = self.server.rss()

    def result(self, records: list[dict[str, Any]], sampler: Sampler, released_s: float,
               client_rss: float | None = None) -> dict[str, Any]:
        """The phase's measurements, read after the students have left and been released."""
        server = self.server
        return {"records": records, "makespan_s": self.makespan, "peak_rss_mb": sampler.peak_rss,
                "peak_threads": sampler.peak_threads, "rss_with_sessions_mb": self.rss_with_sessions,
                "client_rss_mb": self.client_rss if client_rss is None else client_rss,
                "client_cpu_s": self.c_cpu1 - self.c_cpu0,
                "server_cpu_s": self.s_cpu1 - self.s_cpu0, "stats_during": self.during,
                "server_work": server_work(self.before, self.during),
                "released_after_s": released_s, "stats_after": server.stats(),
                "rss_after_mb": server.rss(), "rss_by_process": rss_by_process(server.proc.pid),
                "threads_after": n_threads(server.proc.pid)}


def server_work(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The server's script runs (by kind) and event-loop CPU seconds between two readings."""
    b, a = before.get("scripts", {}), after.get("scripts", {})
    return {"scripts": {k: {f: round(a[k][f] - b.get(k, {}).get(f, 0), 3) for f in a[k]} for k in a},
            "event_loop_cpu_s": round(after.get("event_loop_cpu_s", 0.0)
                                      - before.get("event_loop_cpu_s", 0.0), 2)}


def arrivals(n: int, ramp: float, seed: int) -> tuple[list[float], list[int]]:
    """Arrival delays (sorted, over ``ramp`` s) and the order the students take them."""
    rng = random.Random(seed)
    delays = sorted(rng.uniform(0, ramp) for _ in range(n)) if n > 1 else [0.0]
    order = list(range(n))
    rng.shuffle(order)
    return delays, order


async def run_phase(server: Server, urls: list[str], ramp: float, timeout: float,
                    leave_timeout: float, seed: int, clients: str = "browser") -> dict[str, Any]:
    """Students open ``urls`` (spread over ``ramp`` s), get their results, then all leave."""
    if clients == "ws":
        return await run_phase_ws(server, urls, ramp, timeout, leave_timeout, seed)
    from playwright.async_api import async_playwright

    from classroom.browser_client import student

    delays, order = arrivals(len(urls), ramp, seed)
    records: list[dict[str, Any]] = [{} for _ in urls]
    contexts: list[Any] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def browsers() -> list[psutil.Process]:     # this process's children but the server's tree
            server_pids = {p.pid for p in server.procs()} | {server.proc.pid}
            return [p for p in psutil.Process().children(recursive=True) if p.pid not in server_pids]

        readings = Readings(server, browsers)
        with Sampler(server) as sampler:
            await asyncio.gather(*(student(browser, urls[i], delays[j], timeout, records[i], contexts)
                                   for j, i in enumerate(order)))
            readings.done()
            await asyncio.sleep(LINGER_S)    # tabs stay for the page's redraw after the end
            for ctx in contexts:             # every tab closes
                await ctx.close()
            await browser.close()
            released_s = await asyncio.to_thread(wait_released, server, leave_timeout)
    return readings.result(records, sampler, released_s)


async def run_phase_ws(server: Server, urls: list[str], ramp: float, timeout: float,
                       leave_timeout: float, seed: int) -> dict[str, Any]:
    """``run_phase`` with WebSocket clients instead of browser pages."""
    from classroom.ws_client import ws_student

    delays, order = arrivals(len(urls), ramp, seed)
    records: list[dict[str, Any]] = [{} for _ in urls]
    params = [dict(p.split("=", 1) for p in u.split("?", 1)[1].split("&")) for u in urls]
    hold = asyncio.Event()
    me = psutil.Process(os.getpid())
    readings = Readings(server, lambda: [me])
    with Sampler(server) as sampler:
        tasks = [asyncio.create_task(ws_student(server.url, params[i], delays[j], timeout, records[i], hold))
                 for j, i in enumerate(order)]
        while not all("ok" in r and ("result_s" in r or "error" in r or "errors" in r) for r in records):
            await asyncio.sleep(0.1)
            if all(t.done() for t in tasks):
                break
        readings.done()
        await asyncio.sleep(LINGER_S)            # tabs stay for the page's redraw after the end
        hold.set()                               # every tab closes
        await asyncio.gather(*tasks)
        released_s = await asyncio.to_thread(wait_released, server, leave_timeout)
    return readings.result(records, sampler, released_s, client_rss=rss_mb([me]))
