"""``train`` and ``sweep``: one net, or every combination of comma-separated flag values."""
from __future__ import annotations

import argparse
import itertools
import sys
from typing import Any

from resnet_viz.cli.options import (SPEC_FIELDS, CLIError, add_common_flags, add_spec_flags, check_writable,
                                    given_spec_values, num, one_line, problems, progress, spec_from_args,
                                    write_atomic, write_csv, write_json)
from resnet_viz.spec import ExperimentSpec, parse_spec

INTERRUPTED = "interrupted by user"

CHUNK = 10                 # steps between progress updates (and Ctrl-C checks)

MAX_SWEEP_RUNS = 1000      # a typo like --seed 0,1,...,9999 should not queue a week of work

# A sweep row's metric columns: ``final`` of the snapshot, its "device" renamed because the
# spec has a "device" field too (what was asked, e.g. "auto"; this is what was used).
ROW_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "steps_per_s", "device_used",
               "stopped_reason")


def train(spec: ExperimentSpec, args: argparse.Namespace, bar: Any) -> tuple[Any, bool]:
    """Train to the end; returns (trainer, interrupted). Ctrl-C stops the run, keeping its logs."""
    from resnet_viz.data.datasets import load_dataset
    from resnet_viz.train.trainer import Trainer

    trainer = Trainer(spec, load_dataset(spec, args.data_dir), data_dir=args.data_dir)
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
            f"{num(f['train_loss'])}, train_acc {num(f['train_acc'], '.3f')}, val_loss "
            f"{num(f['val_loss'])}, val_acc {num(f['val_acc'], '.3f')}, "
            f"{f['steps_per_s']} steps/s on {f['device']}")
    return line if doc["status"] == "finished" else f"{line} ({f['stopped_reason']})"


def train_args(parser: argparse.ArgumentParser) -> None:
    add_spec_flags(parser)
    add_common_flags(parser)
    parser.add_argument("--save-model", "--save_model", dest="save_model", metavar="PATH",
                        help="also save the trained weights (torch state dict)")
    parser.add_argument("--init-from", "--init_from", dest="init_from", metavar="PATH",
                        help="start from these weights: ours, or the CIFAR-ResNet layout (docs/cli.md)")


def with_checkpoint(spec: ExperimentSpec, args: argparse.Namespace) -> ExperimentSpec:
    """``--init-from PATH``: a checked copy goes into the data folder and the spec names it."""
    if not getattr(args, "init_from", None):
        return spec
    from resnet_viz.data.files import folder
    from resnet_viz.nets.checkpoints import store_checkpoint
    return spec.replace(init_from=store_checkpoint(args.init_from, folder("checkpoints", args.data_dir)))


def run_train(args: argparse.Namespace) -> int:
    check_writable(args.json, args.save_model)
    spec = with_checkpoint(spec_from_args(args), args)
    bar = progress(spec.steps, "train", args.quiet)
    try:
        trainer, interrupted = train(spec, args, bar)
    finally:
        bar.close()
    doc = trainer.snapshot()
    if args.json:
        write_json(args.json, doc)
    if args.save_model:
        from resnet_viz.train.trainer import model_to_bytes
        write_atomic(args.save_model, model_to_bytes(trainer.model))
    print(train_summary(doc))
    return 130 if interrupted else 0


def sweep_args(parser: argparse.ArgumentParser) -> None:
    add_spec_flags(parser, lists=True)
    add_common_flags(parser)
    parser.add_argument("--csv", metavar="PATH", help="also write the rows as CSV")


def sweep_grid(args: argparse.Namespace) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    """The value lists and their cartesian product. A value that is bad on its own is a
    ``CLIError`` up front; a bad *combination* (CNN depth 21) is left for its row to report."""
    grid = {name: [v.strip() for v in raw.split(",")] for name, raw in given_spec_values(args).items()}
    bad = [n for name, values in grid.items() for v in values
           for n in parse_spec({name: v})[1] if not n.cross_field]
    if bad:
        raise CLIError(problems(bad))
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
        row["error"] = problems(notices)
        return row, False
    try:
        trainer, interrupted = train(spec, args, bar)
    except ValueError as err:              # DataError, SpecError: this row fails, the sweep goes on
        bar.update(spec.steps)
        row["error"] = one_line(err)
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
    return (f"[{i}/{n}] {label}: val_acc {num(row['val_acc'], '.3f')}, train_loss "
            f"{num(row['train_loss'])} ({row['status']})")


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
        write_csv(args.csv, rows, ROW_METRICS)
    print(f"sweep: {len(rows)}/{len(combos)} runs done, {failed} failed"
          + (f" ({INTERRUPTED})" if interrupted else ""))
    return 130 if interrupted else 1 if failed else 0
