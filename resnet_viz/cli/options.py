"""What every subcommand shares: the spec flags, output flags, atomic writes, progress.

Values go through ``spec.parse_spec`` like the app's URL, but where the app falls back to a
default and shows a notice, the CLI stops: a script must never silently run another
experiment than it asked for.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import os
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from resnet_viz import jsonsafe
from resnet_viz.jsonsafe import to_jsonable
from resnet_viz.spec import CHOICES, RANGES, ExperimentSpec, parse_spec
from resnet_viz.validation import Notice

SPEC_FIELDS = tuple(dataclasses.fields(ExperimentSpec))
# Spec fields the CLI takes as a file instead (``--init-from PATH``: the spec holds its id).
PATH_FIELDS = ("init_from",)


class CLIError(Exception):
    """Bad arguments or input: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (raised, so ``main`` returns the code)."""

    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{message} (see '{self.prog} --help')")


def add_spec_flags(parser: argparse.ArgumentParser, base: ExperimentSpec = ExperimentSpec(),
                   lists: bool = False) -> None:
    """One ``--field`` flag per spec field (also ``--field-name`` for ``field_name``)."""
    group = parser.add_argument_group(
        "experiment spec" + (" (any flag may be a comma-separated list)" if lists else ""))
    for f in SPEC_FIELDS:
        if f.name in PATH_FIELDS:
            continue
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
    return {f.name: getattr(args, f.name) for f in SPEC_FIELDS
            if f.name not in PATH_FIELDS and getattr(args, f.name, None) is not None}


def problems(notices: Sequence[Notice]) -> str:
    """The problems only, once each: the CLI stops instead of falling back, so what
    ``parse_spec`` fell back to ("; using the default 20") is not reported."""
    return "; ".join(dict.fromkeys(n.message for n in notices))


def spec_from_args(args: argparse.Namespace, base: ExperimentSpec | None = None) -> ExperimentSpec:
    """``parse_spec`` of the given flags over ``base``, where any notice is a ``CLIError``."""
    spec, notices = parse_spec(given_spec_values(args), base)
    if notices:
        raise CLIError(problems(notices))
    return spec


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """--json, --quiet, --data-dir, --threads: flags every subcommand takes."""
    group = parser.add_argument_group("output and run")
    group.add_argument("--json", metavar="PATH", help="write the result document (JSON) here")
    group.add_argument("--quiet", action="store_true", help="no progress bar")
    group.add_argument("--data-dir", "--data_dir", dest="data_dir", metavar="DIR",
                       help="folder holding mnist/, fashion_mnist/, cifar10/ "
                            "(default: $RESNET_VIZ_DATA or ./data)")
    group.add_argument("--threads", type=positive_int, metavar="N",
                       help="CPU threads torch may use (default: torch's choice)")


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def check_writable(*paths: str | None) -> None:
    """Fail before hours of training, not after: an output folder that is missing, or an
    output path that is a folder (it would be written whole or not at all, docs/cli.md)."""
    for path in filter(None, paths):
        target = Path(path).expanduser().absolute()
        if target.is_dir():
            raise CLIError(f"cannot write {path}: it is a folder; give a file name, e.g. {Path(path) / 'run.json'}")
        if not target.parent.is_dir():
            raise CLIError(f"cannot write {path}: the folder {target.parent} does not exist")


def write_atomic(path: str, data: bytes) -> None:
    # Write then rename, so a crash or Ctrl-C never leaves a half-written file behind.
    target = Path(path).expanduser()
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def write_json(path: str, doc: dict[str, Any]) -> None:
    write_atomic(path, jsonsafe.dumps(doc).encode())


def write_csv(path: str, rows: list[dict[str, Any]], header: Sequence[str] = ()) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else list(header))
    writer.writeheader()
    writer.writerows(to_jsonable(rows))
    write_atomic(path, buf.getvalue().encode())


def progress(total: int, desc: str, quiet: bool) -> Any:
    """A tqdm bar on stderr, shown only on a terminal and without --quiet."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, leave=False,
                dynamic_ncols=True, disable=quiet or not sys.stderr.isatty())


def num(v: Any, fmt: str = ".4g") -> str:
    return "n/a" if v is None else format(v, fmt)


def one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
