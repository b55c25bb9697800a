"""``python -m resnet_viz``: the command line (see ``resnet_viz.cli.main`` and docs/cli.md)."""
from resnet_viz.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
