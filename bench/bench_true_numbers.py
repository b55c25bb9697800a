"""Issue 20's table, re-measured: what evaluation on BN's running averages would log, what
the trainer logs now (precise BN), and train-mode batch statistics, for the same nets.

    python bench/bench_true_numbers.py [--steps 400] [--seed 7]

digits, lr 0.1, the spec's defaults otherwise. "running" evaluates in eval mode on the
running averages the training model has at that step (the old logged number); "precise" is
the trainer's logged train loss (Wu & Johnson 2021 re-estimation on 512 training images);
"batch" is train mode on 512 training images. Needs torch and numpy only.
"""
from __future__ import annotations

import argparse
import copy

import torch
import torch.nn.functional as F

from resnet_viz.spec import ExperimentSpec
from resnet_viz.train.trainer import Trainer

CASES = [("mlp", "identity", 56, (0,)), ("cnn", "none", 56, (0, 200, 300, 400)),
         ("cnn", "identity", 56, (0,)), ("cnn", "identity", 110, (0,))]


@torch.no_grad()
def running_and_batch(trainer: Trainer) -> tuple[float, float]:
    model = copy.deepcopy(trainer.model)
    x, y = trainer.data.x_train[:2048], trainer.data.y_train[:2048]
    running = float(F.cross_entropy(model.eval()(x), y))
    batch = float(F.cross_entropy(model.train()(x[:512]), y[:512]))
    return running, batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(2)
    print(f"{'net':>22} {'step':>5} {'running (old)':>14} {'precise (now)':>14} {'batch':>8}")
    for model, shortcut, depth, steps in CASES:
        spec = ExperimentSpec(model=model, shortcut=shortcut, depth=depth, dataset="digits", lr=0.1,
                              seed=args.seed, steps=max(steps[-1], 1), eval_every=100)
        trainer = Trainer(spec)
        for target in steps:
            trainer.train_steps(target - trainer.step) if target else trainer.evaluate()
            hist = trainer.snapshot()["history"]
            precise = hist["train_loss"][hist["step"].index(target)]
            running, batch = running_and_batch(trainer)
            name = f"{'residual' if shortcut != 'none' else 'plain'} {model.upper()}-{depth}"
            print(f"{name:>22} {target:>5} {running:>14.4g} {precise:>14.4g} {batch:>8.3g}", flush=True)


if __name__ == "__main__":
    main()
