"""The figure warm-up pays plotly's lazy imports before a class draws its first chart."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_warm_up_imports_what_the_live_figures_need_and_never_raises():
    code = ("import sys, logging\n"
            "logging.basicConfig(level=logging.DEBUG)\n"
            "from resnet_viz.figures import warm\n"
            "lazy = 'plotly.graph_objs.contour.colorbar'\n"
            "assert lazy not in sys.modules\n"
            "warm.warm_up()\n"
            "assert lazy in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "figure warm-up failed" not in out.stderr   # every builder ran on its toy data
