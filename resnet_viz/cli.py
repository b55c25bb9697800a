"""Command line: ``python -m resnet_viz train|shatter|sweep`` (schemas: docs/cli.md).

Every ``ExperimentSpec`` field is a flag of the same name. Values go through
``spec.parse_spec`` like the app's URL, but where the app falls back to a default and shows a
notice, the CLI stops: a script must never silently run another experiment than it asked for.

Exit codes: 0 done; 1 some sweep rows failed, or an output file could not be written;
2 bad arguments or input (one line on stderr, no traceback; ``RESNET_VIZ_DEBUG=1`` re-raises);
130 interrupted (partial results are still written). A subcommand is one ``Command`` entry
in ``COMMANDS``: its argument adder and its runner.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import itertools
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple, NoReturn, Sequence

from .lessons import cli as lesson_cli  # argparse only: does not load torch
from .spec import CHOICES, DATASET_SHAPES, RANGES, ExperimentSpec, parse_spec

PROG = "resnet_viz"
INTERRUPTED = "interrupted by user"
CHUNK = 10                 # steps between progress updates (and Ctrl-C checks)
MAX_SWEEP_RUNS = 1000      # a typo like --seed 0,1,...,9999 should not queue a week of work
SPEC_FIELDS = tuple(dataclasses.fields(ExperimentSpec))
# A sweep row's metric columns: ``final`` of the snapshot, its "device" renamed because the
# spec has a "device" field too (what was asked, e.g. "auto"; this is what was used).
ROW_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "steps_per_s", "device_used",
               "stopped_reason")
# Balduzzi et al. 2017 study a width-200 MLP on a 1-D input; used only for flags not given.
SHATTER_BASE = ExperimentSpec(model="mlp", dataset="grid1d", width=200)
# parse_spec notices end with what it fell back to; the CLI reports only the problem.
_FALLBACK = re.compile(r"; (?:using the default|resetting \w+ to)[^;]*$")
_CROSS_FIELD = re.compile(r"; (?:resetting \w+ to [^;]*|using the default experiment)$")


class CLIError(Exception):
    """Bad arguments or input: printed as one line, exit code 2."""


class Command(NamedTuple):
    """One subcommand: ``add_arguments(parser)`` then ``run(args) -> exit code``."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (raised, so ``main`` returns the code)."""

    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{message} (see '{self.prog} --help')")


# --- spec flags ------------------------------------------------------------------

def add_spec_flags(parser: argparse.ArgumentParser, base: ExperimentSpec = ExperimentSpec(),
                   lists: bool = False) -> None:
    """One ``--field`` flag per spec field (also ``--field-name`` for ``field_name``)."""
    group = parser.add_argument_group(
        "experiment spec" + (" (any flag may be a comma-separated list)" if lists else ""))
    for f in SPEC_FIELDS:
        names = [f"--{f.name}"] + ([f"--{f.name.replace('_', '-')}"] if "_" in f.name else [])
        group.add_argument(*names, dest=f.name, default=None, metavar=str(f.type).upper(),
                           help=_flag_help(f.name, getattr(base, f.name)))


def _flag_help(name: str, default: Any) -> str:
    allowed = (" | ".join(CHOICES[name]) if name in CHOICES else
               " to ".join(_plain(v) for v in RANGES[name]) if name in RANGES else "string")
    return f"{allowed} (default: {default!r})"


def _plain(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)   # 1000000, not 1e+06


def given_spec_values(args: argparse.Namespace) -> dict[str, str]:
    """The spec flags the user actually gave, as raw strings."""
    return {f.name: getattr(args, f.name) for f in SPEC_FIELDS if getattr(args, f.name) is not None}


def _problems(notices: list[str]) -> str:
    return "; ".join(dict.fromkeys(_FALLBACK.sub("", n) for n in notices))


def spec_from_args(args: argparse.Namespace, base: ExperimentSpec | None = None) -> ExperimentSpec:
    """``parse_spec`` of the given flags over ``base``, where any notice is a ``CLIError``."""
    spec, notices = parse_spec(given_spec_values(args), base)
    if notices:
        raise CLIError(_problems(notices))
    return spec


# --- shared options, outputs, progress ---------------------------------------------

def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """--json, --quiet, --data-dir, --threads: flags every subcommand takes."""
    group = parser.add_argument_group("output and run")
    group.add_argument("--json", metavar="PATH", help="write the result document (JSON) here")
    group.add_argument("--quiet", action="store_true", help="no progress bar")
    group.add_argument("--data-dir", "--data_dir", dest="data_dir", metavar="DIR",
                       help="folder holding mnist/, fashion_mnist/, cifar10/ "
                            "(default: $RESNET_VIZ_DATA or ./data)")
    group.add_argument("--threads", type=_positive_int, metavar="N",
                       help="CPU threads torch may use (default: torch's choice)")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def check_writable(*paths: str | None) -> None:
    """Fail before hours of training, not after, when an output folder is missing."""
    for path in filter(None, paths):
        folder = Path(path).expanduser().absolute().parent
        if not folder.is_dir():
            raise CLIError(f"cannot write {path}: the folder {folder} does not exist")


def json_safe(obj: Any) -> Any:
    """NaN and ±inf become ``None`` (JSON has no such numbers; strict parsers reject them)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _write(path: str, data: bytes) -> None:
    # Write then rename, so a crash or Ctrl-C never leaves a half-written file behind.
    target = Path(path).expanduser()
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def write_json(path: str, doc: dict[str, Any]) -> None:
    _write(path, json.dumps(json_safe(doc), allow_nan=False).encode())


def write_csv(path: str, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else list(ROW_METRICS))
    writer.writeheader()
    writer.writerows(json_safe(rows))
    _write(path, buf.getvalue().encode())


def progress(total: int, desc: str, quiet: bool) -> Any:
    """A tqdm bar on stderr, shown only on a terminal and without --quiet."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, leave=False,
                dynamic_ncols=True, disable=quiet or not sys.stderr.isatty())


def _num(v: Any, fmt: str = ".4g") -> str:
    return "n/a" if v is None else format(v, fmt)


# --- training (shared by train, shatter --trained and sweep) -------------------------

def train(spec: ExperimentSpec, args: argparse.Namespace, bar: Any) -> tuple[Any, bool]:
    """Train to the end; returns (trainer, interrupted). Ctrl-C stops the run, keeping its logs."""
    from .data import load_dataset
    from .training import Trainer

    trainer = Trainer(spec, load_dataset(spec, args.data_dir))
    interrupted = False
    try:
        while not trainer.done:
            before = trainer.step
            trainer.train_steps(CHUNK)
            bar.update(trainer.step - before)
    except KeyboardInterrupt:
        trainer.stop(INTERRUPTED)
        interrupted = True
    bar.update(spec.steps - trainer.step)  # keeps a sweep's total right after an early stop
    return trainer, interrupted


def train_summary(doc: dict[str, Any]) -> str:
    f = doc["final"]
    line = (f"{doc['status']}: {doc['step']}/{doc['total_steps']} steps, train_loss "
            f"{_num(f['train_loss'])}, train_acc {_num(f['train_acc'], '.3f')}, val_loss "
            f"{_num(f['val_loss'])}, val_acc {_num(f['val_acc'], '.3f')}, "
            f"{f['steps_per_s']} steps/s on {f['device']}")
    return line if doc["status"] == "finished" else f"{line} ({f['stopped_reason']})"


def _train_args(parser: argparse.ArgumentParser) -> None:
    add_spec_flags(parser)
    add_common_flags(parser)
    parser.add_argument("--save-model", "--save_model", dest="save_model", metavar="PATH",
                        help="also save the trained weights (torch state dict)")


def run_train(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    check_writable(args.json, args.save_model)
    bar = progress(spec.steps, "train", args.quiet)
    try:
        trainer, interrupted = train(spec, args, bar)
    finally:
        bar.close()
    doc = trainer.snapshot()
    if args.json:
        write_json(args.json, doc)
    if args.save_model:
        from .training import model_to_bytes
        _write(args.save_model, model_to_bytes(trainer.model))
    print(train_summary(doc))
    return 130 if interrupted else 0


# --- shatter ---------------------------------------------------------------------

def _shatter_args(parser: argparse.ArgumentParser) -> None:
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


def run_shatter(args: argparse.Namespace) -> int:
    from . import shatter  # lazily: its numpy/torch imports are not needed by train or sweep

    spec = spec_from_args(args, SHATTER_BASE)
    check_writable(args.json)
    shatter.make_grid(args.points, args.lo, args.hi)     # bad grid -> ValueError, before training
    model = shatter.shatter_model(spec)                  # non-MLP spec -> ValueError
    extra: dict[str, Any] = {"trained": args.trained, "stopped_reason": None}
    interrupted = False
    if args.trained:
        if DATASET_SHAPES[spec.dataset][0] != (1,):
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


# --- sweep -----------------------------------------------------------------------

def _sweep_args(parser: argparse.ArgumentParser) -> None:
    add_spec_flags(parser, lists=True)
    add_common_flags(parser)
    parser.add_argument("--csv", metavar="PATH", help="also write the rows as CSV")


def sweep_grid(args: argparse.Namespace) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    """The value lists and their cartesian product. A value that is bad on its own is a
    ``CLIError`` up front; a bad *combination* (CNN depth 21) is left for its row to report."""
    grid = {name: [v.strip() for v in raw.split(",")] for name, raw in given_spec_values(args).items()}
    problems = [n for name, values in grid.items() for v in values
                for n in parse_spec({name: v})[1] if not _CROSS_FIELD.search(n)]
    if problems:
        raise CLIError(_problems(problems))
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    if len(combos) > MAX_SWEEP_RUNS:
        raise CLIError(f"the sweep has {len(combos)} runs, more than {MAX_SWEEP_RUNS}; split it")
    return grid, combos


def _requested(params: dict[str, str]) -> dict[str, Any]:
    """Spec fields of a combination that failed: the defaults overlaid with what was asked."""
    types = {f.name: str(f.type) for f in SPEC_FIELDS}
    cast = {"int": lambda t: int(float(t)), "float": float}
    return {**ExperimentSpec().to_dict(),
            **{k: cast.get(types[k], str)(v) for k, v in params.items()}}


def sweep_row(params: dict[str, str], args: argparse.Namespace, bar: Any) -> tuple[dict[str, Any], bool]:
    """One run of the sweep as a flat row; (row, interrupted). Errors go in ``row['error']``."""
    spec, notices = parse_spec(params)
    row = {**(_requested(params) if notices else spec.to_dict()),
           "spec_hash": None if notices else spec.spec_hash(), "status": None, "step": 0,
           **dict.fromkeys(ROW_METRICS), "error": None}
    if notices:
        row["error"] = _problems(notices)
        return row, False
    try:
        trainer, interrupted = train(spec, args, bar)
    except ValueError as err:              # DataError, SpecError: this row fails, the sweep goes on
        bar.update(spec.steps)
        row["error"] = _one_line(err)
        return row, False
    snap = trainer.snapshot()
    final = dict(snap["final"], device_used=snap["final"]["device"])
    row.update(spec_hash=snap["spec_hash"], status=snap["status"], step=snap["step"],
               **{k: final[k] for k in ROW_METRICS})
    return row, interrupted


def _row_line(i: int, n: int, params: dict[str, str], varied: list[str], row: dict[str, Any]) -> str:
    label = " ".join(f"{k}={params[k]}" for k in varied) or "run"
    if row["error"]:
        return f"[{i}/{n}] {label}: error: {row['error']}"
    return (f"[{i}/{n}] {label}: val_acc {_num(row['val_acc'], '.3f')}, train_loss "
            f"{_num(row['train_loss'])} ({row['status']})")


def run_sweep(args: argparse.Namespace) -> int:
    grid, combos = sweep_grid(args)
    check_writable(args.json, args.csv)
    total = sum(s.steps for s, notes in map(parse_spec, combos) if not notes)
    varied = [k for k, values in grid.items() if len(values) > 1]
    bar, rows, interrupted = progress(total, "sweep", args.quiet), [], False
    try:
        for i, params in enumerate(combos, 1):
            bar.set_description(f"run {i}/{len(combos)}")
            row, interrupted = sweep_row(params, args, bar)
            rows.append(row)
            bar.write(_row_line(i, len(combos), params, varied, row), file=sys.stdout)  # above the bar
            sys.stdout.flush()                 # a piped log shows each run as it ends
            if interrupted:
                break
    except KeyboardInterrupt:              # between runs (e.g. while loading data)
        interrupted = True
    finally:
        bar.close()
    failed = sum(row["error"] is not None for row in rows)
    doc = {"grid": grid, "n_runs": len(combos), "n_failed": failed, "rows": rows,
           "stopped_reason": INTERRUPTED if interrupted else None}
    if args.json:
        write_json(args.json, doc)
    if args.csv:
        write_csv(args.csv, rows)
    print(f"sweep: {len(rows)}/{len(combos)} runs done, {failed} failed"
          + (f" ({INTERRUPTED})" if interrupted else ""))
    return 130 if interrupted else 1 if failed else 0


# --- entry point -----------------------------------------------------------------

COMMANDS: dict[str, Command] = {
    "train": Command("train one net and record every probe", _train_args, run_train),
    "shatter": Command("shattered-gradients analysis (Balduzzi et al. 2017) of a 1-D-input MLP",
                       _shatter_args, run_shatter),
    "sweep": Command("train every combination of comma-separated flag values",
                     _sweep_args, run_sweep),
    "lesson": Command("run a guided lesson and check its paper's claim (docs/lessons.md)",
                      lesson_cli.add_arguments, lesson_cli.run),
}


def version() -> str:
    return str(getattr(sys.modules[__package__], "__version__", "0.1.0"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, allow_abbrev=False,
                     description="ResNet Lab from the command line: train plain and residual "
                                 "nets, probe them, sweep over settings (docs/cli.md).")
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help, allow_abbrev=False)
        cmd.add_arguments(p)
        p.set_defaults(run=cmd.run)
    return parser


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


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
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 1 if isinstance(err, OSError) else 2
