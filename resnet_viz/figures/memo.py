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


class SharedFigure(go.Figure):
    """A finished figure many sessions show: ``to_dict`` returns one dict made by :func:`share`.

    Read-only, like the dict it returns (Streamlit only serialises it): plotly's own
    ``to_dict`` copies so that callers may mutate; this one trades that for 30 copies a poll.
    """

    def to_dict(self) -> dict[str, Any]:
        shared = self.__dict__.get("_shared_dict")
        return shared if shared is not None else super().to_dict()


def share(fig: go.Figure) -> go.Figure:
    """``fig`` as a :class:`SharedFigure`, its dict made now (once, by whoever built it).

    Re-classed in place, not copied: ``go.Figure(fig)`` would validate every point again."""
    if type(fig) is go.Figure:
        fig.__class__ = SharedFigure
    if isinstance(fig, SharedFigure) and "_shared_dict" not in fig.__dict__:
        fig._shared_dict = go.Figure.to_dict(fig)
    return fig


class FigureMemo:
    """A bounded, thread-safe LRU of finished figures keyed by a content signature."""

    def __init__(self, max_entries: int = 128, wait_s: float = 30.0) -> None:
        self.max_entries, self.wait_s = max_entries, wait_s
        self._figs: OrderedDict[Hashable, go.Figure] = OrderedDict()
        self._building: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self.builds = 0

    def get(self, signature: Hashable, build: Callable[[], go.Figure]) -> go.Figure:
        """The figure for ``signature``, built by ``build()`` on the first request only.

        Single flight: the 30 tabs that ask for a new figure at the same moment (a run
        just ended) wait for the one that builds it instead of all building it at once.
        """
        with self._lock:
            fig = self._hit_locked(signature)
            if fig is not None:
                return fig
            pending = self._building.get(signature)
            if pending is None:
                pending = self._building[signature] = threading.Event()
                mine = True
            else:
                mine = False
        if not mine:
            pending.wait(self.wait_s)
            with self._lock:
                fig = self._hit_locked(signature)
            # The builder failed or was evicted at once: build this one ourselves.
            return fig if fig is not None else self._store(signature, build())
        try:
            return self._store(signature, build())   # outside the lock: other charts go on
        finally:
            with self._lock:
                self._building.pop(signature, None)
            pending.set()

    def _hit_locked(self, signature: Hashable) -> go.Figure | None:
        fig = self._figs.get(signature)
        if fig is not None:
            self._figs.move_to_end(signature)
        return fig

    def _store(self, signature: Hashable, fig: go.Figure) -> go.Figure:
        fig = share(fig)                    # outside the lock, like the build itself
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
