"""Memory, CPU time and threads of a process tree, through psutil; the load average; a port."""
from __future__ import annotations

import socket

import psutil

GONE = (psutil.NoSuchProcess, psutil.AccessDenied)   # ZombieProcess is a NoSuchProcess
MB = 1024 * 1024


def tree(pid: int) -> list[psutil.Process]:
    """``pid`` and all its descendants (empty if ``pid`` has gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except GONE:
        return []


def rss_mb(procs: list[psutil.Process]) -> float:
    """Resident memory of ``procs`` together, in MiB; a process that has gone counts 0."""
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except GONE:
            pass
    return total / MB


def cpu_s(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds of ``procs`` (each its own, not its waited-for children's)."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except GONE:
            pass
    return total


def n_threads(pid: int) -> int:
    try:
        return psutil.Process(pid).num_threads()
    except GONE:
        return 0


def rss_by_process(pid: int) -> dict[str, float]:
    """RSS (MB) of ``pid`` ("server") and each descendant (trainer hosts by pid)."""
    out: dict[str, float] = {}
    for p in tree(pid):
        try:
            cmd = " ".join(p.cmdline())
        except GONE:
            continue
        name = "server" if p.pid == pid else (
            f"host-{p.pid}" if "resnet_viz.serve.worker_host" in cmd else f"child-{p.pid}")
        out[name] = round(rss_mb([p]), 1)
    return out


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` shows them."""
    return " ".join(f"{x:.2f}" for x in psutil.getloadavg())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
