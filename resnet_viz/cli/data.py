"""``data fetch NAME``, ``data list`` and ``data folder PATH``: bring a real image set, or your
own images (one sub-folder per class, or a zip of that), into the data folder.

``--mirror URL`` (or ``RESNET_VIZ_MIRROR``) fetches from a school's mirror instead of the
canonical source. An interrupted fetch resumes when run again (``resnet_viz.data.fetch``).
"""
from __future__ import annotations

import argparse
import sys

from resnet_viz.data import fetch as remote

ACTIONS = ("fetch", "list", "folder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="fetch a set, or list those that can be fetched")
    parser.add_argument("name", nargs="?", metavar="NAME",
                        help=f"fetch: {' | '.join(remote.SOURCES)}; folder: a folder or .zip of class sub-folders")
    parser.add_argument("--size", type=int, default=32, help="folder: square image size in pixels (8-64)")
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir", metavar="DIR",
                        help="the data folder (default: $RESNET_VIZ_DATA or ./data)")
    parser.add_argument("--mirror", metavar="URL", help="base URL of a mirror serving the same file names")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        for name in remote.SOURCES:
            print(f"{name:14s} {remote.describe(name)}")
        return 0
    if args.action == "folder":
        return import_folder(args)
    if args.name not in remote.SOURCES:
        raise ValueError(f"name the set to fetch: one of {', '.join(remote.SOURCES)}")
    from tqdm import tqdm

    print(f"fetching {remote.describe(args.name)}", file=sys.stderr)
    with tqdm(total=0, unit="B", unit_scale=True, file=sys.stderr, leave=False, dynamic_ncols=True,
              disable=args.quiet or not sys.stderr.isatty()) as bar:
        def show(done: int, total: int) -> None:
            bar.total = total or None
            bar.update(done - bar.n)
        folder = remote.fetch(args.name, args.data_dir, mirror=args.mirror, progress=show)
    print(f"{args.name}: ready in {folder}")
    return 0


def import_folder(args: argparse.Namespace) -> int:
    """Read your images, store them, and print the spec flags that train on them."""
    from pathlib import Path

    from resnet_viz.data import image_folder
    if not args.name:
        raise ValueError("give the folder (or .zip) of class sub-folders to read")
    if not 8 <= args.size <= 64:
        raise ValueError(f"--size must be between 8 and 64 pixels (got {args.size})")
    path = Path(args.name)
    found = (image_folder.read_zip(path.read_bytes(), args.size) if path.suffix.lower() == ".zip"
             else image_folder.read_folder(path, args.size))
    did = image_folder.save(found, args.data_dir)
    for problem in found.problems[:image_folder.MAX_PROBLEMS_SHOWN]:
        print(f"  {problem}", file=sys.stderr)
    print(f"{len(found.labels)} images in {len(found.classes)} classes ({', '.join(found.classes)}); "
          f"train on them with: --model cnn --dataset folder --folder_id {did} --image_size {args.size} "
          f"--folder_classes {len(found.classes)}")
    return 0
