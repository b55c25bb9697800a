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
from concurrent.futures import Future
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
    """A bounded, thread-safe LRU of finished figures keyed by a content signature, built
    single-flight: each entry is the :class:`~concurrent.futures.Future` of its figure.

    Hand-written because ``functools.lru_cache`` does a different job: it keys on every
    argument (here the key is a signature and the builder a fresh closure per call), and two
    threads that miss the same key at once both call the function and get different objects,
    which is the 30 builds at once this memo exists to avoid.
    """

    def __init__(self, max_entries: int = 128, wait_s: float = 30.0) -> None:
        self.max_entries, self.wait_s = max_entries, wait_s
        self._figs: OrderedDict[Hashable, Future[go.Figure]] = OrderedDict()
        self._lock = threading.Lock()
        self.builds = 0

    def get(self, signature: Hashable, build: Callable[[], go.Figure]) -> go.Figure:
        """The figure for ``signature``, built by ``build()`` on the first request only.

        Single flight: the 30 tabs that ask for a new figure at the same moment (a run just
        ended) wait for the one that builds it instead of all building it at once. When that
        build fails, one of them builds it next; one that waits longer than ``wait_s`` builds
        its own copy (not kept).
        """
        with self._lock:
            future = self._figs.get(signature)
            mine = future is None
            if mine:
                future = self._figs[signature] = Future()
                self._trim_locked()
            else:
                self._figs.move_to_end(signature)
        if mine:
            return self._build(signature, future, build)
        try:
            return future.result(self.wait_s)
        except BaseException:        # the builder's error (or a timeout), not this thread's
            if not future.done():    # slower than wait_s: this tab draws its own copy
                return share(build())
            return self.get(signature, build)   # that build failed and left the memo: retry

    def _build(self, signature: Hashable, future: Future[go.Figure],
               build: Callable[[], go.Figure]) -> go.Figure:
        """Build outside the lock (other charts go on), then hand the figure to the waiters."""
        try:
            fig = share(build())
        except BaseException as err:
            with self._lock:
                if self._figs.get(signature) is future:
                    del self._figs[signature]
            future.set_exception(err)
            raise
        with self._lock:
            self.builds += 1
        future.set_result(fig)
        return fig

    def _trim_locked(self) -> None:
        while len(self._figs) > self.max_entries:
            self._figs.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._figs)

    def clear(self) -> None:
        with self._lock:
            self._figs.clear()
