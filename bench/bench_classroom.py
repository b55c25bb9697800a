"""Load benchmark: a class of students on one small server (issue 5).

Starts ``streamlit run app.py`` on a free port with a fresh data directory and teacher
config, then drives real Chromium pages (one browser, one context per student; or, with
``--clients ws``, clients that speak Streamlit's WebSocket protocol without rendering):

1. **single user**: one session opens the Train & compare page with a small preset spec
   (``SHARED`` in ``classroom/constants.py``, but another seed: the same cost, not in the
   cache) and presses Start; we time the page load and how long until both runs of the
   pair show as finished.
   It does so ``--singles`` times (new seeds); the median is the single-user baseline.
   Then it leaves, and the server's memory (the process and its trainer hosts) once the
   reaper has released it, and ``--settle`` s later, is the baseline.
2. **class**: ``--sessions`` students open the *same* preset URL and press Start, while
   ``--others`` students start specs of their own (other seeds and datasets, the same
   size). Arrivals are spread over ``--ramp`` seconds, as in a room.
3. **leave**: every context closes; we wait for the session reaper to release them all and
   read the server's memory and thread count again.

Training compute is counted inside the server: ``--serve`` (used internally) runs Streamlit
in that process after wrapping ``__init__`` / ``train_steps`` of ``Trainer`` and of the
worker-process proxy ``ProcessTrainer`` with counters (jobs built, steps and the CPU seconds
the trainer reports, its host's when it trains in a worker process, per spec hash), and
after capturing the ``Services`` to read the queue and reaper stats; the counters go to a
JSON file twice a second (``classroom/inside.py``). The app code itself is untouched. The
run store is read at the end as a cross-check.

Targets (issue 5): compute (training steps and nets built; their CPU seconds are reported
too) for the 30 identical sessions <= 1.2x one session; p95
time-to-result of those sessions <= 2x single-user; server memory bounded and back near the
baseline after the sessions leave.

    .venv/bin/python bench/bench_classroom.py [--sessions 30] [--others 5] [--json PATH]
        [--steps 1000] [--singles 3] [--ramp 3] [--timeout 900] [--leave-timeout 120]

The browser, the server and the training all share this machine's cores, so the numbers
are those of a worst case: a class whose browsers run on the server. Check ``uptime``
first; the load average before and after is part of the result.

The parts live in ``bench/classroom/`` (its ``__init__`` lists them); this file is the
command line.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))     # bench/: the classroom package

from classroom.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
