"""Benchmark: how fast the Train page's live loss chart responds, in a real browser.

Starts ``streamlit run app.py --server.headless true`` on a free port with a temporary data
dir and teacher config (as ``tests/test_browser.py`` does) and drives Debian's Chromium
(``/usr/bin/chromium``; never ``playwright install``) through Playwright:

(a) **time to first point**: from the click on *Start* to the first point drawn on the loss
    chart. *cold*: the first run after a fresh server start (one server per repeat, so it
    counts the first Trainer, data set and worker start-up in the process); *warm*: on a
    server that already trained one throwaway pair. Every repeat uses another seed, so the
    spec-hash cache and the run store never answer from a finished run.
(b) **refresh period**: while the pair trains, the time between successive changes of the
    number of points on the loss chart (median and p90 over all warm repeats).

How points are counted. Streamlit draws a ``st.plotly_chart`` with plotly.js, and plotly
keeps the figure's traces on the graph div (``div.js-plotly-plot``) as ``gd.data``; each
trace's ``x`` array is exactly what was plotted. Counting SVG nodes (``path.point``) would
not work here: the loss traces are ``lines`` (markers only with ``maxdisplayed``), and the
count would depend on rendering details. We take the divs whose ``layout.title.text`` (tags
stripped: Streamlit's theme wraps it in ``<b>``) starts with "Loss", not merely the first
chart on the page, and count non-null ``y`` values over all their traces; while a fragment
reruns Streamlit can briefly hold a second, still empty div of the same chart, so the
largest count wins. A poller *inside the page* (``setInterval``, 10 ms) records
``performance.now()`` whenever that count changes, and a capturing click listener stamps
the click on the Start button with the same clock, so no Playwright round trip sits inside
a measured interval. Streamlit may replace the div on a rerun; the poller re-queries it on
every tick. It also stamps when the rerun that Start triggers has drawn the pair's part of
the page (the "Curves (CSV)" button appears): a first point later than that came with a
following once-a-second poll, not with the Start rerun itself.

Targets: first point < 2 s (warm), refresh period ~ 1 s (the page polls once a second).

    .venv/bin/python bench/bench_browser.py [--repeats 3] [--watch 8] [--json PATH]

The browser, the server and training share this machine's cores: check ``uptime``; the load
average before and after is part of the result.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
SPEC = "dataset=moons&depth=8&width=16&steps=6000&eval_every=20&log_every=20"

POLLER = """() => {
  if (window.__bench) return;
  const b = window.__bench = {click: null, rerun: null, samples: [], last: -1};
  const count = () => {
    let best = 0;
    for (const el of document.querySelectorAll('.js-plotly-plot')) {
      const t = el.layout && el.layout.title && el.layout.title.text;
      if (!t || !String(t).replace(/<[^>]*>/g, '').startsWith('Loss') || !el.data) continue;
      let n = 0;
      for (const tr of el.data) for (const v of (tr.y || [])) if (v !== null && v !== undefined) n++;
      best = Math.max(best, n);
    }
    return best;
  };
  document.addEventListener('click', (e) => {
    const btn = e.target.closest && e.target.closest('button');
    if (btn && btn.innerText.trim().endsWith('Start') && b.click === null) b.click = performance.now();
  }, true);
  setInterval(() => {
    if (b.click !== null && b.rerun === null &&
        [...document.querySelectorAll('button')].some(e => e.innerText.includes('Curves (CSV)')))
      b.rerun = performance.now();    // the Start rerun has drawn the pair's part of the page
    const n = count();
    if (n !== b.last) { b.samples.push([performance.now(), n]); b.last = n; }
  }, 10);
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


class Server:
    """``streamlit run app.py`` with its own data dir; a context manager."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "classroom.toml").write_text(f'data_dir = "{tmp / "data"}"\nmax_concurrent_jobs = 2\n')
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Server":
        env = dict(os.environ, RESNET_VIZ_CONFIG=str(self.tmp / "classroom.toml"),
                   RESNET_VIZ_SESSION_TIMEOUT_S="3")
        self.log = open(self.tmp / "server.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(self.port), "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        t0, end = time.monotonic(), time.monotonic() + 120
        while not healthy(self.url):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("server did not start:\n" + (self.tmp / "server.log").read_text()[-3000:])
            time.sleep(0.2)
        self.start_s = time.monotonic() - t0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def one_run(browser: Any, url: str, seed: int, watch: float) -> dict[str, Any]:
    """Open the Train page for ``seed``, press Start, watch the loss chart for ``watch`` s."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.set_default_timeout(60_000)
    t_load = time.monotonic()
    page.goto(f"{url}/train?{SPEC}&seed={seed}")
    page.wait_for_selector('[data-testid="stMainBlockContainer"] h1')
    start = page.get_by_role("button", name="Start")
    start.wait_for()
    load_s = time.monotonic() - t_load
    page.evaluate(POLLER)
    start.click()
    end = time.monotonic() + 30
    while not page.evaluate("() => window.__bench.samples.some(s => s[1] > 0)"):
        if time.monotonic() > end:
            raise RuntimeError(f"seed {seed}: no point on the loss chart within 30 s")
        page.wait_for_timeout(50)
    page.wait_for_timeout(int(watch * 1000))
    b = page.evaluate("() => window.__bench")
    try:
        page.get_by_role("button", name="Stop").click(timeout=5000)   # free the cores for the next run
        page.wait_for_timeout(500)
    except Exception:
        pass
    page.close()
    changes = [(t, n) for t, n in b["samples"] if n > 0 and t >= (b["click"] or 0)]
    first = (changes[0][0] - b["click"]) / 1000 if changes and b["click"] is not None else None
    times = [t for t, _ in changes]
    rerun = (b["rerun"] - b["click"]) / 1000 if b["rerun"] is not None and b["click"] is not None else None
    return {"seed": seed, "page_load_s": load_s, "first_point_s": first, "start_rerun_s": rerun,
            "intervals_s": [(b_ - a) / 1000 for a, b_ in zip(times, times[1:])],
            "points": [n for _, n in changes]}


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="cold server starts and warm runs (each)")
    ap.add_argument("--watch", type=float, default=8.0, help="seconds to watch the chart after the first point")
    ap.add_argument("--json", type=Path, help="write the results here too")
    args = ap.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} not found: install Debian's chromium (never `playwright install`)")
    from playwright.sync_api import sync_playwright

    result: dict[str, Any] = {"spec": SPEC, "repeats": args.repeats, "watch_s": args.watch,
                              "cpus": os.cpu_count(), "load_before": loadavg()}
    base = 1000 + int(time.time()) % 100_000              # fresh seeds: nothing is cached
    cold, warm = [], []
    with tempfile.TemporaryDirectory(prefix="bench_browser_") as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        for i in range(args.repeats):                      # (a) cold: a fresh server each time
            with Server(Path(tmp) / f"cold{i}") as srv:
                r = one_run(browser, srv.url, base + i, min(args.watch, 3.0))
                r["server_start_s"] = srv.start_s
                cold.append(r)
                print(f"cold {i}: first point {r['first_point_s']:.2f} s (Start rerun drawn at "
                      f"{r['start_rerun_s']:.2f} s)", file=sys.stderr)
        with Server(Path(tmp) / "warm") as srv:            # (a) warm + (b) refresh period
            one_run(browser, srv.url, base + 500, 2.0)    # throwaway
            for i in range(args.repeats):
                r = one_run(browser, srv.url, base + 600 + i, args.watch)
                warm.append(r)
                print(f"warm {i}: first point {r['first_point_s']:.2f} s (Start rerun drawn at "
                      f"{r['start_rerun_s']:.2f} s), "
                      f"{len(r['intervals_s'])} refreshes", file=sys.stderr)
        browser.close()
    intervals = [x for r in warm for x in r["intervals_s"]]
    result.update(
        load_after=loadavg(), cold=cold, warm=warm,
        summary={"cold_first_point_median_s": statistics.median(r["first_point_s"] for r in cold),
                 "warm_first_point_median_s": statistics.median(r["first_point_s"] for r in warm),
                 "refresh_median_s": pct(intervals, 0.5), "refresh_p90_s": pct(intervals, 0.9),
                 "refresh_n": len(intervals)})
    s = result["summary"]
    rows = [("first point, cold (1st run after start)", s["cold_first_point_median_s"],
             [r["first_point_s"] for r in cold], "< 2 s"),
            ("first point, warm", s["warm_first_point_median_s"], [r["first_point_s"] for r in warm], "< 2 s"),
            ("Start rerun drawn, warm", statistics.median(r["start_rerun_s"] for r in warm),
             [r["start_rerun_s"] for r in warm], "(info)"),
            ("refresh period, median", s["refresh_median_s"], None, "~1 s"),
            ("refresh period, p90", s["refresh_p90_s"], None, "~1 s")]
    print(f"\n{'measure':42} {'value':>8}  {'runs':26} target")
    for name, v, each, target in rows:
        runs = " ".join(f"{x:.2f}" for x in each) if each else f"n={s['refresh_n']}"
        print(f"{name:42} {v:7.2f}s  {runs:26} {target}")
    print(f"load average before {result['load_before']}, after {result['load_after']} "
          f"({result['cpus']} cores)")
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
