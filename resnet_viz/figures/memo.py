"""One figure per content, shared by every session that draws it.

Building a plotly figure is mostly plotly's property validation, ~tens of ms holding the GIL.
When 30 students watch the same live run, every tab's poll would build the same two charts:
30x the work, enough on a 2-core server to starve the training threads (measured in
``bench/bench_classroom.py``). The figures are pure functions of their inputs, so a figure
built once for a given content can be handed to everyone; callers must treat a figure they get
from here as read-only (Streamlit's ``plotly_chart`` only reads it: ``to_dict`` copies).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, Mapping, Sequence

import plotly.graph_objects as go


def runs_signature(runs: Sequence[Mapping[str, Any]]) -> tuple:
    """What a run's curves depend on: a live job's snapshot at a given step and state is the
    same for every watcher (training is deterministic in the spec; ``spec_hash`` is the key)."""
    return tuple((r.get("key"), r.get("step"), r.get("state"), r.get("label"),
                  len(r.get("history") or ())) for r in runs)


class FigureMemo:
    """A bounded, thread-safe LRU of finished figures keyed by a content signature."""

    def __init__(self, max_entries: int = 128) -> None:
        self.max_entries = max_entries
        self._figs: OrderedDict[Hashable, go.Figure] = OrderedDict()
        self._lock = threading.Lock()
        self.builds = 0

    def get(self, signature: Hashable, build: Callable[[], go.Figure]) -> go.Figure:
        """The figure for ``signature``, built by ``build()`` on the first request only."""
        with self._lock:
            fig = self._figs.get(signature)
            if fig is not None:
                self._figs.move_to_end(signature)
                return fig
        fig = build()                        # outside the lock: other charts are not held up
        with self._lock:
            self.builds += 1
            fig = self._figs.setdefault(signature, fig)   # a racing twin: the first one wins
            self._figs.move_to_end(signature)
            while len(self._figs) > self.max_entries:
                self._figs.popitem(last=False)
            return fig

    def __len__(self) -> int:
        with self._lock:
            return len(self._figs)

    def clear(self) -> None:
        with self._lock:
            self._figs.clear()
