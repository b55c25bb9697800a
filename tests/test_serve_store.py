"""The SQLite run store: round trips, listing, export, crash safety, damaged files, safety."""
from __future__ import annotations

import base64
import io
import json
import multiprocessing
import os
import signal
import sqlite3

import pytest

from resnet_viz.spec import ExperimentSpec
from resnet_viz.nets.checkpoints import read_state_dict as load_state_dict
from resnet_viz.serve.store import DB_NAME, RunStore, StoreError

SPEC = ExperimentSpec(dataset="moons", depth=4, width=16, steps=40)
KEY = SPEC.spec_hash()
RESULT = {"step": 40, "status": "finished", "history": {"step": [0, 40], "val_loss": [1.0, 0.5]},
          "final": {"val_acc": 0.9, "stopped_reason": "finished"}}


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path)
    yield s
    s.close()


def test_round_trip(store):
    store.save(KEY, SPEC, "finished", RESULT, b"weights", label="my run")
    rec = store.get(KEY)
    assert (rec.key, rec.spec, rec.status, rec.result, rec.weights, rec.label) == (
        KEY, SPEC.to_dict(), "finished", RESULT, b"weights", "my run")
    assert store.get(KEY, with_weights=False).weights is None
    assert store.get("0" * 16) is None
    created = rec.created
    store.save(KEY, SPEC, "stopped", RESULT, None)            # overwrite keeps ``created``
    again = store.get(KEY)
    assert again.status == "stopped" and again.created == created and again.updated >= created


def test_nan_becomes_null_so_the_json_is_strict(store):
    store.save(KEY, SPEC, "diverged", {"history": {"train_loss": [1.0, float("nan"), float("inf")]}})
    assert store.get(KEY).result["history"]["train_loss"] == [1.0, None, None]


def test_list_filter_limit_and_delete(store):
    specs = [SPEC.replace(seed=i) for i in range(4)]
    for i, spec in enumerate(specs):
        store.save(spec.spec_hash(), spec, "finished" if i % 2 else "stopped", RESULT, b"x" * 1000)
    rows = store.list()
    assert [r.key for r in rows] == [s.spec_hash() for s in reversed(specs)]  # newest first
    assert rows[0].final == RESULT["final"] and not hasattr(rows[0], "weights")
    assert {r.status for r in store.list(status="finished")} == {"finished"}
    assert len(store.list(limit=2)) == 2
    assert store.delete(specs[0].spec_hash()) and not store.delete(specs[0].spec_hash())
    assert len(store.list()) == 3


def test_export_is_strict_json(store):
    store.save(KEY, SPEC, "finished", {**RESULT, "x": float("nan")}, b"\x00\x01weights")
    out = store.export(KEY)
    json.dumps(out, allow_nan=False)
    assert out["spec"] == SPEC.to_dict() and "weights_b64" not in out
    full = store.export(KEY, include_weights=True)
    assert base64.b64decode(full["weights_b64"]) == b"\x00\x01weights"
    with pytest.raises(StoreError, match="no stored run"):
        store.export("f" * 16)


@pytest.mark.parametrize("key", ["../../etc/passwd", "ABCDEF0123456789", "abc", "0" * 17, "", None])
def test_keys_are_validated(store, key):
    with pytest.raises(StoreError, match="not a run key"):
        store.get(key)
    with pytest.raises(StoreError):
        store.save(key, SPEC, "finished", {})
    assert sorted(os.listdir(store.data_dir)) == sorted(
        n for n in os.listdir(store.data_dir) if n.startswith(DB_NAME))


def test_unknown_status_is_refused(store):
    with pytest.raises(StoreError, match="unknown run status"):
        store.save(KEY, SPEC, "exploded", {})


def test_weights_are_loaded_without_unpickling_code():
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.arange(3.0)}, buf)
    assert torch.equal(load_state_dict(buf.getvalue())["w"], torch.arange(3.0))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    bad = io.BytesIO()
    torch.save({"w": Evil()}, bad)
    with pytest.raises(Exception, match="(?i)weights.only|unpickl"):
        load_state_dict(bad.getvalue())


def _writer(data_dir: str, ready) -> None:
    """Child process: start a run, then rewrite it forever until killed."""
    store = RunStore(data_dir)
    store.save(KEY, SPEC, "running", {"step": 0})
    ready.set()
    step = 0
    while True:
        step += 1
        store.save(KEY, SPEC, "running", {"step": step, "pad": "x" * 100_000}, os.urandom(200_000))


def test_killed_writer_leaves_a_clean_store_marked_interrupted(tmp_path):
    ctx = multiprocessing.get_context("spawn")  # no inherited threads or locks
    ready = ctx.Event()
    proc = ctx.Process(target=_writer, args=(str(tmp_path), ready))
    proc.start()
    try:
        assert ready.wait(300)
        import time
        time.sleep(0.3)                       # mid-way through some write
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
    store, notice = RunStore.open_or_recover(tmp_path)
    try:
        assert "1 run(s) were interrupted" in notice
        rec = store.get(KEY)
        assert rec.status == "interrupted" and rec.result["step"] >= 0
        assert store._integrity_problem() is None
    finally:
        store.close()


def test_damaged_file_is_moved_aside(tmp_path):
    (tmp_path / DB_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a readable SQLite database"):
        RunStore(tmp_path)
    store, notice = RunStore.open_or_recover(tmp_path)
    try:
        assert "moved to" in notice and "fresh" in notice
        store.save(KEY, SPEC, "finished", RESULT)
        assert store.get(KEY).status == "finished"
        aside = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
        assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    finally:
        store.close()


def test_open_or_recover_on_a_healthy_store_is_quiet(tmp_path):
    store, notice = RunStore.open_or_recover(tmp_path)
    store.save(KEY, SPEC, "finished", RESULT)
    store.close()
    store, notice = RunStore.open_or_recover(tmp_path)
    assert notice is None and store.get(KEY).status == "finished"
    with sqlite3.connect(tmp_path / DB_NAME) as conn:  # WAL: readers never block the writer
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_unwritable_data_dir_gives_a_sentence(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open the run store"):
        RunStore(blocker / "sub")
