"""What He et al. §4.2's augmentation (pad 4, random crop, flip) costs per training step.

    python bench/bench_augment.py [--steps 60] [--rounds 3] [--threads 1]

Two trainers on the same random CIFAR-shaped data (a ResNet-20, width 16, batch 128), one
with ``augment=he``, interleaved round by round; reports the median steps/s by process CPU
time and the ratio (augmented / plain). Needs torch and numpy only.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from resnet_viz.data.datasets import Dataset
from resnet_viz.spec import ExperimentSpec
from resnet_viz.train.trainer import Trainer


def data(n: int = 1024) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    return Dataset(x[:896], y[:896], x[896:], y[896:], 10, (3, 32, 32), "cifar10")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = ExperimentSpec(model="cnn", depth=20, width=16, dataset="cifar10", steps=10**6, eval_every=10**5,
                          log_every=10**5)
    trainers = {k: Trainer(base.replace(augment=k), data()) for k in ("none", "he")}
    rates: dict[str, list[float]] = {k: [] for k in trainers}
    for t in trainers.values():
        t.train_steps(5)                                   # warm-up (first eval, allocator)
    for r in range(args.rounds):
        for k in (("none", "he") if r % 2 == 0 else ("he", "none")):
            c0 = time.process_time()
            trainers[k].train_steps(args.steps)
            rates[k].append(args.steps / (time.process_time() - c0))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"steps/s by CPU time (median of {args.rounds}): none {med['none']:.1f}, he {med['he']:.1f}; "
          f"ratio he/none {med['he'] / med['none']:.3f}")


if __name__ == "__main__":
    main()
