"""The entry point: ``python -m resnet_viz`` / ``resnet-lab`` (schemas: docs/cli.md).

Every ``ExperimentSpec`` field is a flag of the same name. Exit codes: 0 done; 1 some sweep
rows failed, or an output file could not be written; 2 bad arguments or input (one line on
stderr, no traceback; ``RESNET_VIZ_DEBUG=1`` re-raises); 130 interrupted (partial results are
still written). A subcommand is one ``Command`` entry in ``COMMANDS``: its argument adder and
its runner, each in its own module.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, NamedTuple, Sequence

import resnet_viz
from resnet_viz.cli import data, lesson, predict, shatter, train
from resnet_viz.cli.options import CLIError, Parser, one_line
from resnet_viz.cli.train import INTERRUPTED

PROG = "resnet_viz"


class Command(NamedTuple):
    """One subcommand: ``add_arguments(parser)`` then ``run(args) -> exit code``."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {
    "train": Command("train one net and record every probe", train.train_args, train.run_train),
    "shatter": Command("shattered-gradients analysis (Balduzzi et al. 2017) of a 1-D-input MLP",
                       shatter.add_arguments, shatter.run),
    "sweep": Command("train every combination of comma-separated flag values",
                     train.sweep_args, train.run_sweep),
    "predict": Command("the logits of a net loaded from a checkpoint (--init-from) on N×C×H×W images",
                       predict.add_arguments, predict.run),
    "data": Command("download a real image set (MNIST, Fashion-MNIST, CIFAR-10/100), checked and resumable",
                    data.add_arguments, data.run),
    "lesson": Command("run a guided lesson and check its paper's claim (docs/lessons.md)",
                      lesson.add_arguments, lesson.run),
}


def version() -> str:
    return resnet_viz.__version__


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, allow_abbrev=False,
                     description="ResNet Lab from the command line: train plain and residual "
                                 "nets, probe them, sweep over settings (docs/cli.md).")
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help, allow_abbrev=False)
        cmd.add_arguments(p)
        p.set_defaults(run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (``__main__`` passes it to ``SystemExit``)."""
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "threads", None):  # a subcommand need not take --threads
            import torch
            torch.set_num_threads(args.threads)
        return args.run(args)
    except SystemExit as stop:             # --help and --version
        return stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    except KeyboardInterrupt:
        print(f"{PROG}: {INTERRUPTED}", file=sys.stderr)
        return 130
    except (CLIError, ValueError, OSError) as err:   # SpecError and DataError are ValueErrors
        if os.environ.get("RESNET_VIZ_DEBUG"):
            raise
        print(f"{PROG}: error: {one_line(err)}", file=sys.stderr)
        return 1 if isinstance(err, OSError) else 2
