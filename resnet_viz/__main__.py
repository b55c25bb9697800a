"""``python -m resnet_viz``: the command line (see ``resnet_viz.cli`` and docs/cli.md)."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
