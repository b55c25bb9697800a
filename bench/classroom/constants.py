"""What every part of the classroom bench shares: paths, the preset, what the page shows."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]           # the repository
ENTRY = ROOT / "bench" / "bench_classroom.py"        # re-run with --serve as the server process
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
# The preset every student of the class opens: the Train & compare pair on a 2-D toy set.
SHARED = {"dataset": "spirals", "depth": "8", "width": "32"}
SINGLE_SEED = 1000                       # the single user's seed: same cost, not cached for the class
OTHER_DATASETS = ("moons", "circles", "xor", "gaussians", "spirals")
# What the page shows for an ended run (figures.training.progress_summary, via ui.live.status_ui).
ENDED_RE = r"(finished [\d,]+ steps on|diverged at step|stopped at step)"
DONE_JS = ("() => (document.body.textContent.match(/" + ENDED_RE + "/g) || []).length >= 2")
PAGE_PATH = "train"                      # st.Page("pages/train.py") is served at /train
TRACE = bool(os.environ.get("BENCH_TRACE"))   # ws clients keep a message trace in the results
START = ".st-key-start button, .st-key-start_anyway button"
# After the last result, tabs stay this long before the class leaves: the page redraws once
# more after a run ends (boundaries, shelf), and a tab that left at once would skip that work
# in the single-user phase and leave its first-use cost (imports) to the class.
LINGER_S = 3.0


def url_for(base: str, params: dict[str, str]) -> str:
    """The Train page of the server at ``base`` with ``params`` in its query string."""
    return f"{base}/{PAGE_PATH}?" + "&".join(f"{k}={v}" for k, v in params.items())
