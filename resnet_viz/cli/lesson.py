"""``python -m resnet_viz lesson NAME [--param k=v ...] [--json OUT]`` and ``lesson --list``.

Same document as the Lessons page (``runner.run_lesson``). Exit codes as the main CLI:
0 done (whether or not the claim held: the document says); 1 the output could not be
written; 2 bad arguments or settings (one line on stderr); 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from resnet_viz.cli.options import check_writable, write_json
from resnet_viz.lessons import NAMES, get


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help=f"one of: {', '.join(NAMES)}")
    parser.add_argument("--list", action="store_true", help="list the lessons and their settings")
    parser.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting; lists are comma-separated, e.g. depths=4,16,32")
    parser.add_argument("--json", metavar="PATH", help="write the lesson document (JSON) here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="CPU threads torch may use (default 1, as the app's workers: the "
                             "same count gives the app's numbers exactly)")


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param needs KEY=VALUE (got {pair!r})")
        out[key.strip()] = value.strip()
    return out


def listing() -> str:
    lines = []
    for lesson in map(get, NAMES):
        est = lesson.estimate_s(lesson.defaults())
        lines.append(f"{lesson.name:14s} {lesson.title}  (about {est:.0f} s here)")
        for p in lesson.params:
            default = ",".join(map(str, p.default)) if isinstance(p.default, tuple) else p.default
            lines.append(f"    {p.name}={default}  {p.help}")
    return "\n".join(lines)


def summary(doc: dict[str, Any]) -> str:
    c = doc["claim"]
    verdict = "HOLDS" if c["holds"] else "DOES NOT HOLD"
    t = doc["timing"]
    lines = [f"{doc['title']}: claim {verdict} ({t.get('train_s', 0) + t['analysis_s']:.1f} s)",
             f"  claim: {c['text']}", f"  ours:  {c['ours']}", f"  paper: {c['paper']}"]
    return "\n".join(lines + ([f"  note:  {c['note']}"] if c["note"] else []))


def run(args: argparse.Namespace) -> int:
    from resnet_viz.lessons.runner import run_lesson

    if args.list:
        print(listing())
        return 0
    if not args.name:
        raise ValueError("give a lesson name, or --list to see them")
    lesson = get(args.name)
    params = lesson.resolve(parse_params(args.param))   # bad settings fail before any training
    check_writable(args.json)
    bar = _bar(args.quiet, lesson.name)
    try:
        doc = run_lesson(lesson.name, params, progress=lambda f, msg: _advance(bar, f, msg),
                         threads=args.threads)
    finally:
        bar.close()
    if args.json:
        write_json(args.json, doc)
    print(summary(doc))
    return 0


def _bar(quiet: bool, name: str) -> Any:
    from tqdm import tqdm
    return tqdm(total=100, desc=name, unit="%", file=sys.stderr, leave=False, dynamic_ncols=True,
                disable=quiet or not sys.stderr.isatty(), bar_format="{l_bar}{bar}| {postfix}")


def _advance(bar: Any, fraction: float, message: str) -> None:
    bar.update(max(0, round(100 * fraction) - bar.n))
    bar.set_postfix_str(message[:60], refresh=False)

