"""``shatter``: the shattered-gradients analysis (Balduzzi et al. 2017) of a 1-D-input MLP."""
from __future__ import annotations

import argparse
from typing import Any

from resnet_viz.cli.options import CLIError, add_common_flags, add_spec_flags, check_writable, progress, spec_from_args, write_json
from resnet_viz.cli.train import train
from resnet_viz.spec import ExperimentSpec

# Balduzzi et al. 2017 study a width-200 MLP on a 1-D input; used only for flags not given.
SHATTER_BASE = ExperimentSpec(model="mlp", dataset="grid1d", width=200)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_flags(parser, SHATTER_BASE)
    add_common_flags(parser)
    group = parser.add_argument_group("shattered gradients")
    group.add_argument("--points", type=int, default=256, help="grid points (default: 256)")
    group.add_argument("--lo", type=float, default=-2.0, help="grid start (default: -2)")
    group.add_argument("--hi", type=float, default=2.0, help="grid end (default: 2)")
    group.add_argument("--trained", action="store_true",
                       help="train for --steps first (on --dataset), then probe")
    group.add_argument("--bn", choices=("grid", "running"), default="grid",
                       help="BN statistics: from the grid (default) or the net's running ones")


def run(args: argparse.Namespace) -> int:
    from resnet_viz.analysis import shatter  # lazily: its numpy/torch imports are not needed by train or sweep

    spec = spec_from_args(args, SHATTER_BASE)
    check_writable(args.json)
    shatter.make_grid(args.points, args.lo, args.hi)     # bad grid -> ValueError, before training
    model = shatter.shatter_model(spec)                  # non-MLP spec -> ValueError
    extra: dict[str, Any] = {"trained": args.trained, "stopped_reason": None}
    interrupted = False
    if args.trained:
        if spec.data_shape()[0] != (1,):
            raise CLIError(f"--trained needs a dataset with a 1-D input (grid1d), not {spec.dataset}")
        bar = progress(spec.steps, "train", args.quiet)
        try:
            trainer, interrupted = train(spec, args, bar)
        finally:
            bar.close()
        snap, model = trainer.snapshot(), trainer.model
        extra["training"] = {k: snap[k] for k in ("step", "status", "history", "final")}
        extra["stopped_reason"] = snap["final"]["stopped_reason"]
    doc = {**shatter.shatter_report(spec, model=model, n=args.points, lo=args.lo, hi=args.hi,
                                    bn=args.bn), **extra}
    if args.json:
        write_json(args.json, doc)
    when = f"after {extra['training']['step']} steps" if args.trained else "at init"
    print(f"lag-1 autocorrelation {doc['lag1']:.3f}, spectrum slope {doc['spectrum_slope']:.2f} "
          f"(white noise ~ 0, brown ~ -2): {spec.model} depth {spec.depth}, width {spec.width}, "
          f"shortcut {spec.shortcut}, {when}")
    return 130 if interrupted else 0
