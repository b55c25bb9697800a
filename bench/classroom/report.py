"""The targets (issue 5) and the table the bench prints."""
from __future__ import annotations

from typing import Any

from classroom.summary import fmt

TARGETS = ("compute_ok", "p95_ok", "memory_ok")


def targets(out: dict[str, Any]) -> dict[str, Any]:
    """Compute, p95 time-to-result and memory against the targets, from one run's results."""
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
    return {
        "compute_ratio": ratio_compute, "compute_ok": ratio_compute is not None and ratio_compute <= 1.2,
        "cpu_ratio": ratio_cpu,
        "p95_ratio": ratio_p95, "p95_ok": ratio_p95 is not None and ratio_p95 <= 2.0,
        "rss_growth_after_leave_mb": growth,
        # Back to baseline: within 50 MB, or 5% of the warm baseline on a big server.
        "memory_ok": growth <= max(50.0, 0.05 * out["rss_baseline_mb"]),
    }


def _times_rows(out: dict[str, Any]) -> list[tuple[str, str, str]]:
    s, c, t = out["single"], out["class"], out["targets"]
    return [
        ("sessions ok (shared / others)", f"{c['shared']['ok']}/{c['shared']['n']} / {c['others']['ok']}/{c['others']['n']}", ""),
        ("single user: page load / time-to-result (s)", f"{fmt(s['load_p50_s'])} / {fmt(s['result_p50_s'])}",
         "median of " + ", ".join(fmt(v) for v in s.get("results_s", []))),
        ("class: page load p50 / p95 / max (s)", f"{fmt(c['all']['load_p50_s'])} / {fmt(c['all']['load_p95_s'])} / {fmt(c['all']['load_max_s'])}", ""),
        ("shared: time-to-result p50 / p95 / max (s)", f"{fmt(c['shared']['result_p50_s'])} / {fmt(c['shared']['result_p95_s'])} / {fmt(c['shared']['result_max_s'])}",
         f"p95 = {fmt(t['p95_ratio'], 2)}x single (target <= 2)"),
        ("others: time-to-result p50 / max (s)", f"{fmt(c['others']['result_p50_s'])} / {fmt(c['others']['result_max_s'])}", ""),
        ("every session done (makespan, s)", fmt(c["makespan_s"]), ""),
    ]


def _compute_rows(out: dict[str, Any]) -> list[tuple[str, str, str]]:
    s, c, t = out["single"], out["class"], out["targets"]
    return [
        ("jobs trained: single / shared / others", f"{s['compute']['jobs_built']:.0f} / {c['compute_shared']['jobs_built']} / {c['compute_others']['jobs_built']}", ""),
        ("training CPU s: single / shared group", f"{fmt(s['compute']['cpu_s'], 2)} / {fmt(c['compute_shared']['cpu_s'], 2)}",
         f"{fmt(t['cpu_ratio'], 2)}x"),
        ("pair trained in (server side, s): single / shared", f"{fmt(s['compute']['train_span_s'])} / {fmt(c['compute_shared']['train_span_s'])}", ""),
        ("chunks that waited for a busy trainer process", str(c["stats_during"].get("host_clashes", "-")), ""),
        ("training steps: single / shared group", f"{s['compute']['steps']:.0f} / {c['compute_shared']['steps']}",
         f"compute {fmt(t['compute_ratio'], 2)}x (steps and nets built; target <= 1.2)"),
        ("server CPU s during class (all work)", fmt(c["server_cpu_s"]), f"browsers: {fmt(c['client_cpu_s'])} CPU s"),
        ("  script runs: loads / reruns / polls (n, CPU s)", " / ".join(
            f"{w['n']:.0f}, {w['cpu_s']:.1f}" for w in c["server_work"]["scripts"].values()),
         f"event loop {fmt(c['server_work']['event_loop_cpu_s'])} CPU s"),
    ]


def _memory_rows(out: dict[str, Any]) -> list[tuple[str, str, str]]:
    c, t = out["class"], out["targets"]
    growth = t["rss_growth_after_leave_mb"]
    return [
        ("server RSS MB: idle / warm baseline / peak", f"{fmt(out['rss_idle_mb'], 0)} / {fmt(out['rss_baseline_mb'], 0)} / {fmt(c['peak_rss_mb'], 0)}", ""),
        ("server RSS MB after all left: released / settled", f"{fmt(out['rss_after_leave_mb'], 0)} / {fmt(out.get('rss_after_settle_mb'), 0)}",
         f"{growth:+.0f} MB vs baseline ({'ok' if t['memory_ok'] else 'HIGH'})"),
        ("server RSS MB after each class wave", " / ".join(fmt(v, 0) for v in out.get("waves_rss_mb", [])), ""),
        ("server threads: baseline / peak / released / settled", f"{out['threads_baseline']} / {c['peak_threads']} / {out['threads_after_leave']} / {out.get('threads_after_settle', '-')}", ""),
        ("sessions released by the reaper after", f"{fmt(c['released_after_s'])} s", ""),
        ("tracebacks in the server log", str(out["tracebacks_in_server_log"]), ""),
        ("load average before / after", f"{out['load_before']} / {out['load_after']}", ""),
    ]


def print_table(out: dict[str, Any]) -> None:
    """One line per measure: name, value, note; then the server log's errors."""
    rows = _times_rows(out) + _compute_rows(out) + _memory_rows(out)
    width = max(len(r[0]) for r in rows)
    for name, val, note in rows:
        print(f"{name:<{width}}  {val:<24} {note}")
    for err, n in out.get("server_errors", {}).items():
        print(f"  server log: {n} x {err}")


def passed(out: dict[str, Any]) -> bool:
    return all(out["targets"][k] for k in TARGETS)
