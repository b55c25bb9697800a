"""Aligned metric series with bounded memory.

A run of 100k steps must not grow a list of 100k rows per session (a classroom server holds
many). When a log passes ``max_points`` rows it keeps every other row and from then on
accepts every other candidate, so rows stay evenly spaced and memory stays O(max_points).
"""
from __future__ import annotations

from typing import Any, Iterable

MAX_POINTS = 400


# The history's series. train_/val_ loss and accuracy: eval mode on precise-BN statistics
# (what the net computes at test time); batch_loss_mean: train mode, the mean minibatch loss
# since the previous point (None at step 0, before any minibatch).
HISTORY_KEYS = ("step", "train_loss", "train_acc", "val_loss", "val_acc", "batch_loss_mean")


class BoundedLog:
    """Columns of equal length; one ``append`` adds one row to every column."""

    def __init__(self, columns: Iterable[str], max_points: int = MAX_POINTS) -> None:
        self.columns = tuple(columns)
        self.max_points = max(4, max_points)
        self.stride = 1                 # accept one candidate row in ``stride``
        self._data: dict[str, list[Any]] = {c: [] for c in self.columns}

    def __len__(self) -> int:
        return len(self._data[self.columns[0]])

    def wants(self, step: int, every: int) -> bool:
        """Would a row logged at ``step`` (candidates every ``every`` steps) be kept?"""
        return step % (every * self.stride) == 0

    def append(self, **row: Any) -> None:
        """Add a row (every column must be given)."""
        missing = set(self.columns) - set(row)
        if missing:
            raise KeyError(f"missing columns {sorted(missing)}")
        for c in self.columns:
            self._data[c].append(row[c])
        if len(self) > self.max_points:
            self._thin()

    def _thin(self) -> None:
        # Keep the first row and every other one; the newest row survives as well so the
        # curve always ends at the latest value.
        n = len(self)
        keep = list(range(0, n - 1, 2)) + [n - 1]
        for c in self.columns:
            col = self._data[c]
            self._data[c] = [col[i] for i in keep]
        self.stride *= 2

    def to_dict(self) -> dict[str, list[Any]]:
        """A copy safe to hand to another thread or to ``json.dumps``."""
        return {c: [list(v) if isinstance(v, list) else v for v in col]
                for c, col in self._data.items()}

    def last(self, column: str) -> Any:
        col = self._data[column]
        return col[-1] if col else None
