"""The command line and the order of the phases (see ``bench/bench_classroom.py``)."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from classroom.constants import OTHER_DATASETS, SHARED, SINGLE_SEED, url_for
from classroom.phase import run_phase
from classroom.processes import free_port, loadavg, n_threads, rss_by_process
from classroom.report import passed, print_table, targets
from classroom.server import Server
from classroom.summary import compute_for, pair_keys, pct, store_check, summarise

DESCRIPTION = "Load benchmark: a class of students on one small server (issue 5)."


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=DESCRIPTION)
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
                    help="what-if in the server: poll=SECONDS (see inside.what_if)")
    ap.add_argument("--profile-polls", metavar="FILE",
                    help="cProfile the server's live polls (fragment runs, thread CPU time) into FILE (pstats)")
    ap.add_argument("--seed", type=int, default=0, help="arrival order and jitter")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (server log, store)")
    return ap.parse_args(argv)


class Plan:
    """What each student opens: the class's preset, the single users', the others' specs."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.sessions = args.sessions
        self.shared = {**SHARED, "steps": str(args.steps)}
        self.singles = [{**self.shared, "seed": str(SINGLE_SEED + i)} for i in range(max(1, args.singles))]
        self.others = [{**self.shared, "dataset": OTHER_DATASETS[i % len(OTHER_DATASETS)], "seed": str(i + 1)}
                       for i in range(args.others)]

    def class_urls(self, base: str, seed_offset: int) -> list[str]:
        """The class's URLs: the preset ``sessions`` times, then the others; seeds shifted."""
        return [url_for(base, {**p, "seed": str(int(p.get("seed", 0)) + seed_offset)})
                for p in [self.shared] * self.sessions + self.others]


def phase(server: Server, args: argparse.Namespace, urls: list[str], ramp: float = 0.0,
          seed: int | None = None) -> dict[str, Any]:
    return asyncio.run(run_phase(server, urls, ramp, args.timeout, args.leave_timeout,
                                 args.seed if seed is None else seed, args.clients))


def start_server(args: argparse.Namespace, workdir: Path) -> Server:
    config = ((f"max_concurrent_jobs = {args.jobs}\n" if args.jobs else "")
              + ("worker_processes = false\n" if args.worker_threads else ""))
    return Server(workdir, free_port(), args.switch_interval, config, args.st_flag,
                  args.what_if, args.profile_polls)


def header(args: argparse.Namespace, plan: Plan, load_before: str) -> dict[str, Any]:
    """The run's settings, first in the JSON."""
    return {"clients": args.clients, "sessions": args.sessions, "others": args.others, "steps": args.steps,
            "shared_params": plan.shared, "load_before": load_before,
            "jobs": args.jobs, "worker_threads": args.worker_threads, "switch_interval": args.switch_interval,
            "st_flags": args.st_flag, "what_if": args.what_if,
            "cores": len(os.sched_getaffinity(0))}


def idle_server(server: Server, out: dict[str, Any]) -> None:
    t = time.perf_counter()
    server.wait_healthy()
    out["server_start_s"] = time.perf_counter() - t
    out["rss_idle_mb"] = server.rss()
    out["threads_idle"] = n_threads(server.proc.pid)


def warm_up(server: Server, args: argparse.Namespace, out: dict[str, Any]) -> None:
    """The teacher tries the app before class: imports and first kernels are paid here,
    not by the single user we compare against."""
    print("phase 0: warm-up (one session, a tiny run) ...", flush=True)
    warm = phase(server, args, [url_for(server.url, {**SHARED, "steps": "20", "seed": "999"})])
    out["warmup"] = summarise(warm["records"])


def single_user(server: Server, args: argparse.Namespace, plan: Plan, out: dict[str, Any]) -> list[dict[str, Any]]:
    """One single user is one sample of a noisy machine (3.2 to 4.6 s for the same pair in
    one stop's runs): the baseline is the median of a few, one after another. Returns the
    compute of each."""
    print(f"phase 1: a single user alone ({len(plan.singles)} times) ...", flush=True)
    ones = [phase(server, args, [url_for(server.url, single)]) for single in plan.singles]
    one = ones[-1]
    computes = [compute_for(one["stats_after"], pair_keys(single)) for single in plan.singles]
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
    return computes


def the_class(server: Server, args: argparse.Namespace, plan: Plan, computes: list[dict[str, Any]],
              out: dict[str, Any]) -> None:
    """The class: the preset ``--sessions`` times and the others, arriving over ``--ramp`` s."""
    print(f"phase 2: {args.sessions} students on one preset + {args.others} on their own ...",
          flush=True)
    cls = phase(server, args, plan.class_urls(server.url, 0), args.ramp)
    recs = cls["records"]
    stats = cls["stats_after"]
    out["class"] = {"all": summarise(recs), "shared": summarise(recs[:args.sessions]),
                    "others": summarise(recs[args.sessions:]),
                    **{k: v for k, v in cls.items() if k != "records"},
                    "compute_shared": compute_for(stats, pair_keys(plan.shared)),
                    "compute_others": compute_for(stats, [k for p in plan.others for k in pair_keys(p)]),
                    "jobs_built_total": sum(v.get("built", 0) for v in stats.get("per_key", {}).values())
                    - sum(c["jobs_built"] for c in computes),
                    "records": recs}
    out["store"] = store_check(server.data)
    # After leaving: memory once the sessions are released.
    out["rss_after_leave_mb"] = cls["rss_after_mb"]
    out["threads_after_leave"] = cls["threads_after"]


def settle_and_waves(server: Server, args: argparse.Namespace, plan: Plan, out: dict[str, Any]) -> None:
    """Streamlit keeps a disconnected session's state for server.disconnectedSessionTTL
    (120 s) in case the tab reconnects; memory is read again after that, and after each
    further wave of the class (bounded, or growing with every class?)."""
    print(f"waiting {args.settle:.0f} s for disconnected sessions to expire ...", flush=True)
    time.sleep(args.settle)
    out["rss_after_settle_mb"] = server.rss()
    out["rss_by_process_after_settle"] = rss_by_process(server.proc.pid)
    out["threads_after_settle"] = n_threads(server.proc.pid)
    out["stats_after_settle"] = server.stats()
    out["waves_rss_mb"] = [out["rss_after_settle_mb"]]
    for wave in range(1, args.waves):
        print(f"wave {wave + 1}: the class again, new seeds ...", flush=True)
        phase(server, args, plan.class_urls(server.url, 100 * wave), args.ramp, args.seed + wave)
        time.sleep(args.settle)
        out["waves_rss_mb"].append(server.rss())


def measure(server: Server, args: argparse.Namespace, plan: Plan, out: dict[str, Any]) -> None:
    """Every phase, in order, on one server."""
    idle_server(server, out)
    if args.warmup:
        warm_up(server, args, out)
    computes = single_user(server, args, plan, out)
    the_class(server, args, plan, computes, out)
    if args.settle > 0:
        settle_and_waves(server, args, plan, out)
    out["tracebacks_in_server_log"] = server.tracebacks()
    out["server_errors"] = server.errors()


def _terminate(signum: int, _frame: Any) -> None:   # `timeout` or Ctrl-C: stop the server too
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve"]:                   # we are the server process
        from classroom.inside import serve
        sep = argv.index("--")
        serve(argv[1], argv[sep + 1:])
        return 0
    args = parse_args(argv)
    plan = Plan(args)
    signal.signal(signal.SIGTERM, _terminate)
    workdir = Path(tempfile.mkdtemp(prefix="bench_classroom_"))
    load_before = loadavg()
    print(f"load average before: {load_before}  (cores: {os.cpu_count()})", flush=True)
    server = start_server(args, workdir)
    out = header(args, plan, load_before)
    try:
        measure(server, args, plan, out)
    finally:
        server.stop()
        out["load_after"] = loadavg()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            out["workdir"] = str(workdir)
    out["targets"] = targets(out)
    print_table(out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
        print(f"wrote {args.json}")
    return 0 if passed(out) else 1
