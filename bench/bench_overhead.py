"""Benchmark: probe overhead of the instrumented ``Trainer`` vs a bare PyTorch loop.

Same model (``build_model``), data (digits), seed, optimiser and batch order; CIFAR-style
CNN (He et al. 2016 §4.2, width 16) at depths 20 and 56. Three variants run side by side
in one process, interleaved round by round (the order rotates each round) so that load from
other processes hits all of them alike; each reports the median steps/s over rounds, by wall
clock and by this process's CPU time. On a shared machine the CPU-time figure is the one to
trust: wall time also counts the time other processes held the cores (use ``--threads 1``
there: oversubscribed torch threads make wall times swing by several x).

- ``trainer``:   ``train.trainer.Trainer``, all probes on, default ``log_every`` / ``eval_every``.
- ``bare+eval``: bare loop that evaluates (train + val, as the trainer does) at the same steps.
- ``bare``:      bare loop, no evaluation at all.

Ratio (a) = trainer / bare+eval: what the probes and the trainer's bookkeeping cost.
Ratio (b) = trainer / bare: everything, evaluation included. Target: (a) >= 0.90.

    .venv/bin/python bench/bench_overhead.py [--depths 20 56] [--steps 200] [--rounds 3]
        [--threads N] [--json PATH] [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_viz.data.datasets import load_dataset  # noqa: E402
from resnet_viz.nets.models import build_model, count_params  # noqa: E402
from resnet_viz.spec import ExperimentSpec  # noqa: E402
from resnet_viz.train.trainer import EVAL_CAP, Trainer, make_optimizer  # noqa: E402

VARIANTS = ("trainer", "bare+eval", "bare")


class BareLoop:
    """The plainest loop that does the trainer's optimisation (and optionally its evaluation)."""

    def __init__(self, spec: ExperimentSpec, data: Any, evaluate: bool) -> None:
        self.spec, self.evaluate = spec, evaluate
        self.model = build_model(spec, data.input_shape, data.n_classes)
        self.opt = make_optimizer(spec, self.model.parameters())
        self.x, self.y = data.x_train, data.y_train
        self.eval_sets = [(data.x_train[:EVAL_CAP], data.y_train[:EVAL_CAP]),
                          (data.x_val[:EVAL_CAP], data.y_val[:EVAL_CAP])]
        self.gen = torch.Generator().manual_seed(spec.seed)
        self.perm, self.pos, self.step = torch.empty(0, dtype=torch.long), 0, 0
        if evaluate:
            self.eval()  # the trainer evaluates at step 0 too

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        bs = min(self.spec.batch_size, len(self.x))
        if self.pos + bs > len(self.perm):
            self.perm, self.pos = torch.randperm(len(self.x), generator=self.gen), 0
        idx = self.perm[self.pos:self.pos + bs]
        self.pos += bs
        return self.x[idx], self.y[idx]

    @torch.no_grad()
    def eval(self) -> None:
        self.model.eval()
        for x, y in self.eval_sets:
            loss, correct = 0.0, 0
            for i in range(0, len(x), 1024):
                out = self.model(x[i:i + 1024])
                loss += float(F.cross_entropy(out, y[i:i + 1024], reduction="sum"))
                correct += int((out.argmax(1) == y[i:i + 1024]).sum())
        self.model.train()

    def train_steps(self, n: int) -> None:
        for _ in range(n):
            x, y = self.batch()
            loss = F.cross_entropy(self.model(x), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.step += 1
            if self.evaluate and self.step % self.spec.eval_every == 0:
                self.eval()


def make_runners(depth: int, seed: int) -> tuple[ExperimentSpec, dict[str, Any]]:
    # steps is huge so the trainer never finishes (nor schedules the LR) mid-benchmark.
    spec = ExperimentSpec(model="cnn", depth=depth, width=16, dataset="digits", seed=seed,
                          steps=1_000_000, device="cpu")
    data = load_dataset(spec)
    return spec, {"trainer": Trainer(spec, data, device="cpu"),
                  "bare+eval": BareLoop(spec, data, evaluate=True),
                  "bare": BareLoop(spec, data, evaluate=False)}


def timed(runner: Any, n: int) -> dict[str, float]:
    """Steps/s of ``n`` steps by wall clock and by CPU time of this process."""
    w0, c0 = time.perf_counter(), time.process_time()
    runner.train_steps(n)
    return {"wall": n / (time.perf_counter() - w0), "cpu": n / (time.process_time() - c0)}


def bench(depth: int, steps: int, rounds: int, warmup: int, seed: int = 0) -> dict[str, Any]:
    spec, runners = make_runners(depth, seed)
    for r in runners.values():
        r.train_steps(warmup)  # allocator, autograd graph caches, first-call costs
    per_round = []
    for k in range(rounds):
        order = VARIANTS[k % 3:] + VARIANTS[:k % 3]
        per_round.append({name: timed(runners[name], steps) for name in order})
    out: dict[str, Any] = {"depth": depth, "params": count_params(runners["bare"].model),
                           "steps_per_round": steps, "rounds": per_round,
                           "log_every": spec.log_every, "eval_every": spec.eval_every}
    for clock in ("cpu", "wall"):
        med = {v: statistics.median(r[v][clock] for r in per_round) for v in VARIANTS}
        out[clock] = {"median_steps_per_s": med,
                      "ratio_probes": med["trainer"] / med["bare+eval"],
                      "ratio_all": med["trainer"] / med["bare"],
                      "paired_ratio_probes": [r["trainer"][clock] / r["bare+eval"][clock]
                                              for r in per_round]}
    return out


def profile_trainer(depth: int, steps: int, top: int = 18) -> str:
    """cProfile of the trainer alone: where its steps spend their time."""
    spec, runners = make_runners(depth, 0)
    trainer = runners["trainer"]
    trainer.train_steps(20)
    prof = cProfile.Profile()
    prof.enable()
    trainer.train_steps(steps)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def table(results: list[dict[str, Any]]) -> str:
    head = (f"{'depth':>5} {'clock':>5} {'trainer':>9} {'bare+eval':>9} {'bare':>9} "
            f"{'(a) probes':>10} {'(b) all':>8}  paired (a) per round")
    lines = [head, "-" * len(head)]
    for r in results:
        for clock in ("cpu", "wall"):
            c = r[clock]
            m = c["median_steps_per_s"]
            paired = " ".join(f"{x:.3f}" for x in c["paired_ratio_probes"])
            lines.append(f"{r['depth']:>5} {clock:>5} {m['trainer']:>9.2f} {m['bare+eval']:>9.2f} "
                         f"{m['bare']:>9.2f} {c['ratio_probes']:>10.3f} {c['ratio_all']:>8.3f}  {paired}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--depths", type=int, nargs="+", default=[20, 56])
    # 100 steps = exactly one evaluation (eval_every) and 10 probe steps (log_every) per chunk.
    ap.add_argument("--steps", type=int, default=100, help="timed steps per variant per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--profile", action="store_true", help="also cProfile the trainer")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    results = [bench(d, args.steps, args.rounds, args.warmup) for d in args.depths]
    machine = {"torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpu_count": os.cpu_count(), "loadavg_before": load_before,
               "loadavg_after": os.getloadavg()}
    print(f"steps/s (by CPU time of this process and by wall clock), median of {args.rounds} interleaved rounds of {args.steps} steps "
          f"(CNN width 16 on digits, batch 128, {machine['threads']} threads, load average "
          f"{load_before[0]:.1f} -> {machine['loadavg_after'][0]:.1f})")
    print(table(results))
    print("(a) = trainer / bare loop with the same evaluations; (b) = trainer / bare loop "
          "without evaluation. Target (a) >= 0.90.")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    if args.profile:
        print(profile_trainer(args.depths[0], args.steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
