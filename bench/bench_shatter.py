"""Benchmark: one batched backward pass vs a per-point loop for df/dx on a grid.

Balduzzi et al. 2017 (arXiv:1702.08591) probe df/dx at 256 points of a 200-unit net.
Freezing BN on the grid makes the points independent, so one backward pass over the batch
gives every df_i/dx_i; the reference loop takes one autograd.grad per point. Both are timed
in this one run (ratios, not absolute times, are what carry between machines).

    .venv/bin/python bench/bench_shatter.py [--depth 50] [--width 200] [--n 256] [--threads 1]
                                            [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_viz.analysis.shatter import (autocorrelation, batched_pass, freeze_bn_on,  # noqa: E402
                                input_gradients, make_grid, per_point_gradients, per_point_pass,
                                shatter_model)
from resnet_viz.spec import ExperimentSpec  # noqa: E402


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Fastest wall time of ``repeats`` calls (after one warm-up call) and the last result."""
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def bench(depth: int, width: int, n: int, seed: int = 0) -> dict[str, Any]:
    x = make_grid(n)
    spec = ExperimentSpec(model="mlp", dataset="grid1d", width=width, depth=depth,
                          shortcut="identity", norm="batch", seed=seed)
    model = shatter_model(spec)
    net = freeze_bn_on(model, x)
    # Pass only: the same frozen copy for both, so the ratio is the batching itself.
    t_batch, g_batch = best_of(lambda: batched_pass(net, x), 10)
    t_loop, g_loop = best_of(lambda: per_point_pass(net, x), 2)
    # End to end: each public function freezes its own copy of the net.
    t_batch_e2e, _ = best_of(lambda: input_gradients(model, x), 3)
    t_loop_e2e, _ = best_of(lambda: per_point_gradients(model, x), 1)
    err = float((g_batch - g_loop).abs().max() / g_loop.abs().max())
    return {"depth": depth, "width": width, "n": n, "threads": torch.get_num_threads(),
            "batched_s": t_batch, "per_point_s": t_loop, "ratio": t_loop / t_batch,
            "batched_end_to_end_s": t_batch_e2e, "per_point_end_to_end_s": t_loop_e2e,
            "ratio_end_to_end": t_loop_e2e / t_batch_e2e, "max_rel_diff": err}


def lag1_table(depths: tuple[int, ...], width: int, n: int,
               seeds: tuple[int, ...] = (0, 1, 2)) -> list[dict[str, Any]]:
    """Lag-1 autocorrelation of df/dx over seeds: plain, ResNet and β = 0.1 ResNet."""
    rows = []
    x = make_grid(n)
    for kind, beta in (("none", 1.0), ("identity", 1.0), ("identity", 0.1)):
        for depth in depths:
            vals = []
            for seed in seeds:
                spec = ExperimentSpec(model="mlp", dataset="grid1d", width=width, depth=depth,
                                      shortcut=kind, residual_scale=beta, seed=seed)
                vals.append(float(autocorrelation(input_gradients(shatter_model(spec), x), 1)[1]))
            rows.append({"kind": kind, "beta": beta, "depth": depth, "lag1": vals,
                         "mean": float(np.mean(vals)), "std": float(np.std(vals))})
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--width", type=int, default=200)
    ap.add_argument("--n", type=int, default=256)
    # One thread by default: the loop cannot use more, and on a shared 2-core machine
    # multi-threaded timings swing with the neighbours' load.
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    ap.add_argument("--json", type=Path, default=None, help="save results to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    res = bench(args.depth, args.width, args.n)
    print(f"df/dx, {args.n} points, depth {args.depth}, width {args.width}, "
          f"{res['threads']} thread(s)")
    print(f"  batched pass   {res['batched_s'] * 1e3:8.1f} ms")
    print(f"  per-point loop {res['per_point_s'] * 1e3:8.1f} ms")
    print(f"  ratio {res['ratio']:.0f}x (target >= 50x); end to end, incl. freezing BN: "
          f"{res['ratio_end_to_end']:.0f}x; max relative difference {res['max_rel_diff']:.1e}")
    res["lag1"] = lag1_table((1, 4, 12, 24, 50), args.width, args.n)
    print("lag-1 autocorrelation of df/dx (mean ± std over seeds 0, 1, 2):")
    for row in res["lag1"]:
        print(f"  {row['kind']:8s} beta={row['beta']:<4g} depth {row['depth']:3d}: "
              f"{row['mean']:+.3f} ± {row['std']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
        print(f"saved {args.json}")
    return res


if __name__ == "__main__":
    main()
