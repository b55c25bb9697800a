"""Persistent run store: finished runs survive a restart of the app.

Embedded by default: one SQLite file ``<data_dir>/runs.sqlite`` (no server to install).
Every write is one transaction, and the database runs in WAL mode, so killing the process
mid-write leaves the previous committed state; a run that was still training when the
process died is found as ``"running"`` at the next start and marked ``"interrupted"``
(:meth:`RunStore.mark_interrupted`).

Security: keys are validated (16 hex digits, the shape of ``ExperimentSpec.spec_hash``) and
only ever used as SQL parameters, never as paths; the data directory is resolved once; model
weights are stored as raw bytes and are decoded only with ``torch.load(weights_only=True)``
(``nets.checkpoints.read_state_dict``), so a tampered store cannot execute code.

Pages talk to :class:`RunStoreBackend`, so a database server can replace SQLite later.
"""
from __future__ import annotations

import base64
import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from resnet_viz import jsonsafe
from resnet_viz.spec import ExperimentSpec

DB_NAME = "runs.sqlite"
STATUSES = ("running", "finished", "stopped", "diverged", "failed", "interrupted")
_KEY_RE = re.compile(r"[0-9a-f]{16}")
_MAX_LABEL = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    spec_json TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    result_json TEXT NOT NULL,
    weights BLOB,
    label TEXT NOT NULL DEFAULT ''
)"""


class StoreError(ValueError):
    """The run store cannot be used as asked; the message is meant for a person."""


@dataclass(frozen=True)
class RunSummary:
    """One row of :meth:`RunStore.list`: everything but the history and the weights."""

    key: str
    spec: dict[str, Any]
    status: str
    created: float
    updated: float
    label: str
    final: dict[str, Any] | None


@dataclass(frozen=True)
class RunRecord:
    """A full stored run. ``weights`` is None when not asked for or never saved."""

    key: str
    spec: dict[str, Any]
    status: str
    created: float
    updated: float
    label: str
    result: dict[str, Any]
    weights: bytes | None


class RunStoreBackend(Protocol):
    """What the job queue and the pages need from a run store (SQLite today)."""

    def save(self, key: str, spec: ExperimentSpec, status: str, result: dict[str, Any],
             weights: bytes | None = None, label: str = "") -> None: ...
    def get(self, key: str, with_weights: bool = True) -> RunRecord | None: ...
    def list(self, limit: int = 100, status: str | None = None) -> list[RunSummary]: ...
    def delete(self, key: str) -> bool: ...
    def delete_if_status(self, key: str, status: str) -> bool: ...
    def export(self, key: str, include_weights: bool = False) -> dict[str, Any]: ...
    def mark_interrupted(self) -> int: ...


def check_key(key: str) -> str:
    """Return ``key`` if it has the shape of a spec hash, else raise :class:`StoreError`."""
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise StoreError(f"{str(key)[:40]!r} is not a run key (16 hex digits expected)")
    return key


class RunStore:
    """SQLite run store; safe to share between threads (one connection behind a lock)."""

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()  # resolved once, never re-read
        self.path = self.data_dir / DB_NAME
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False,
                                         isolation_level=None, timeout=10.0)
        except (OSError, sqlite3.Error) as err:
            raise StoreError(f"cannot open the run store in {self.data_dir} ({err})") from err
        self._lock = threading.Lock()
        try:
            with self._lock:
                self._conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable against process crashes in WAL mode (only a power cut
                # may lose the last commits, never corrupt the file).
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.execute(_SCHEMA)
        except sqlite3.DatabaseError as err:
            self._conn.close()
            raise StoreError(f"the run store {self.path} is not a readable SQLite database "
                             f"({err}); move it aside to start with a fresh store") from err

    @classmethod
    def open_or_recover(cls, data_dir: str | Path) -> tuple["RunStore", str | None]:
        """Open the store at app start; a damaged file is moved aside and a fresh one made.

        Also marks runs left "running" by a crashed process as "interrupted". Returns the
        store and a notice for the teacher (None when all was well).
        """
        try:
            store = cls(data_dir)
            problem = store._integrity_problem()
            if problem is None:
                n = store.mark_interrupted()
                return store, (f"{n} run(s) were interrupted by the last shutdown" if n else None)
            store.close()
        except StoreError as err:
            problem = str(err)
        path = Path(data_dir).expanduser().resolve() / DB_NAME
        aside = path.with_name(f"{DB_NAME}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):  # keep the journal with its database
            src = Path(str(path) + suffix)
            if src.exists():
                src.rename(Path(str(aside) + suffix))
        return cls(data_dir), (f"The run store could not be read ({problem}). It was moved to "
                               f"{aside.name} and a fresh, empty store was started.")

    def _integrity_problem(self) -> str | None:
        try:
            with self._lock:
                row = self._conn.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as err:
            return str(err)
        return None if row and row[0] == "ok" else str(row[0] if row else "no answer")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                cur = self._conn.execute(sql, params)
                self._conn.execute("COMMIT")
                return cur.rowcount
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def save(self, key: str, spec: ExperimentSpec, status: str, result: dict[str, Any],
             weights: bytes | None = None, label: str = "") -> None:
        """Insert or replace the run ``key`` in one transaction (``created`` is kept)."""
        check_key(key)
        if status not in STATUSES:
            raise StoreError(f"unknown run status {status!r}; expected one of {', '.join(STATUSES)}")
        now = time.time()
        self._write(
            "INSERT INTO runs (key, spec_json, status, created, updated, result_json, weights, label)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET"
            " spec_json=excluded.spec_json, status=excluded.status, updated=excluded.updated,"
            " result_json=excluded.result_json, weights=excluded.weights, label=excluded.label",
            (key, json.dumps(spec.to_dict(), sort_keys=True), status, now, now,
             jsonsafe.dumps(result), weights, str(label)[:_MAX_LABEL]))

    def get(self, key: str, with_weights: bool = True) -> RunRecord | None:
        """The stored run, or None. ``with_weights=False`` skips reading the blob."""
        check_key(key)
        blob = "weights" if with_weights else "NULL"
        with self._lock:
            row = self._conn.execute(
                f"SELECT key, spec_json, status, created, updated, label, result_json, {blob}"
                " FROM runs WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return RunRecord(row[0], json.loads(row[1]), row[2], row[3], row[4], row[5],
                         json.loads(row[6]), row[7])

    def list(self, limit: int = 100, status: str | None = None) -> list[RunSummary]:
        """Most recently updated runs first; neither histories nor weights are loaded."""
        sql = ("SELECT key, spec_json, status, created, updated, label,"
               " json_extract(result_json, '$.final') FROM runs")
        params: tuple[Any, ...] = ()
        if status is not None:
            sql, params = sql + " WHERE status = ?", (status,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY updated DESC LIMIT ?",
                                      params + (max(0, int(limit)),)).fetchall()
        return [RunSummary(r[0], json.loads(r[1]), r[2], r[3], r[4], r[5],
                           json.loads(r[6]) if r[6] else None) for r in rows]

    def delete(self, key: str) -> bool:
        """Remove a run; True when it existed."""
        return self._write("DELETE FROM runs WHERE key = ?", (check_key(key),)) > 0

    def delete_if_status(self, key: str, status: str) -> bool:
        """Remove a run only while it still has ``status`` (e.g. a cancelled "running" trace)."""
        return self._write("DELETE FROM runs WHERE key = ? AND status = ?",
                           (check_key(key), status)) > 0

    def export(self, key: str, include_weights: bool = False) -> dict[str, Any]:
        """The run as a strict-JSON dict (a download); weights as base64 when asked."""
        rec = self.get(key, with_weights=include_weights)
        if rec is None:
            raise StoreError(f"no stored run with key {key}")
        out: dict[str, Any] = {"key": rec.key, "spec": rec.spec, "status": rec.status,
                               "created": rec.created, "updated": rec.updated,
                               "label": rec.label, "result": rec.result}
        if include_weights and rec.weights is not None:
            out["weights_b64"] = base64.b64encode(rec.weights).decode("ascii")
        return out

    def mark_interrupted(self) -> int:
        """Runs still "running" (their process died) become "interrupted"; returns how many.

        Call once at app start, before any job runs.
        """
        return self._write("UPDATE runs SET status = 'interrupted', updated = ?"
                           " WHERE status = 'running'", (time.time(),))
