"""The trainer host: the loop a worker process runs (``python -m resnet_viz.serve.worker_host``).

It holds trainers by id and answers one request with one reply on its stdin, one end of a
:func:`multiprocessing.Pipe` (``workers.py`` holds the other, and says why training lives
in processes), until the pipe closes. ``multiprocessing.connection`` does the framing; a
message is a JSON header and raw bytes (weights), sent as two frames with
:func:`send_message`: nothing is pickled, and only this module's operations run. Nothing
here imports streamlit.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from resnet_viz.serve.memory import give_back_memory, limit_arenas
from resnet_viz.spec import ExperimentSpec

log = logging.getLogger(__name__)
MAX_FRAME = 1 << 30  # a frame longer than this is a broken peer, not a large run
NICE = int(os.environ.get("RESNET_VIZ_HOST_NICE", "10"))


def send_message(conn: Connection, msg: dict[str, Any], blob: bytes = b"") -> None:
    """Send ``msg`` (JSON: NaN and inf allowed) and ``blob`` (raw bytes)."""
    conn.send_bytes(json.dumps(msg).encode())
    conn.send_bytes(blob)


def recv_message(conn: Connection) -> tuple[dict[str, Any], bytes] | None:
    """The next ``(msg, blob)``, or None when nothing more can be read: the other end
    closed the pipe, or broke a frame (cut short, or longer than ``MAX_FRAME``)."""
    try:
        head, blob = conn.recv_bytes(MAX_FRAME), conn.recv_bytes(MAX_FRAME)
    except (EOFError, OSError):
        return None
    return json.loads(head), blob


def _drop(trainers: dict[str, Any], ids: list[str]) -> None:
    dropped = [trainers.pop(tid, None) for tid in ids]
    if any(dropped) and not trainers:  # idle: hand the ended runs' heap back to the OS
        del dropped
        give_back_memory()


def _build(trainers: dict[str, Any], tid: str, spec_dict: dict[str, Any], data_dir: str) -> str:
    """Build trainer ``tid``; "" or the reason it cannot be built (for people)."""
    from resnet_viz.train.trainer import trainer_for
    try:
        trainers[tid] = trainer_for(ExperimentSpec(**spec_dict), data_dir)
    except ValueError as err:  # SpecError / DataError
        return str(err)
    return ""


def _handle(trainers: dict[str, Any], msg: dict[str, Any], data_dir: str) -> tuple[dict[str, Any], bytes]:
    _drop(trainers, list(msg.get("drop", ())))
    op, tid = msg.get("op"), msg.get("id", "")
    if op == "drop":
        return {"ok": True, "trainers": len(trainers)}, b""
    if op == "warm":
        from resnet_viz.train.trainer import warm_up
        warm_up()
        return {"ok": True}, b""
    if op == "build" and (why := _build(trainers, tid, msg["spec"], data_dir)):
        return {"ok": False, "value_error": True, "error": why}, b""
    if tid not in trainers:
        return {"ok": False, "error": f"no trainer {tid!r} in this process"}, b""
    trainer, reply = trainers[tid], {"ok": True}
    if op == "train":
        reply["done"] = trainer.train_steps(int(msg["n"]))
    elif op == "stop":
        trainer.stop(str(msg["reason"]), str(msg.get("status", "stopped")))
    elif op == "weights":
        return reply, trainer.weights()
    elif op != "build":
        return {"ok": False, "error": f"unknown operation {op!r}"}, b""
    reply.update(snap=trainer.snapshot(), step=trainer.step, done_flag=trainer.done)
    return reply, b""


def serve(data_dir: str, threads: int) -> None:
    """The host's main loop: one request, one reply, until the pipe closes."""
    import torch
    # The server handles Ctrl-C and closes the pipe; a host that died first would fail a
    # run the server is about to store as interrupted.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Below the server in priority: a student's click or page load comes first, training
    # takes the cycles left over (the shared run still trains: pages are bursts).
    os.nice(NICE)
    limit_arenas()
    torch.set_num_threads(max(1, threads))
    os.dup2(2, 1)  # a stray print() goes with the logs, not into the server's own output
    conn = Connection(0)
    trainers: dict[str, Any] = {}
    while (frame := recv_message(conn)) is not None:
        msg, _ = frame
        if msg.get("op") == "exit":
            break
        c0 = time.thread_time()
        try:
            reply, blob = _handle(trainers, msg, data_dir)
        except Exception as err:  # one bad run must not take the others in this host down
            log.exception("trainer host: %s failed", msg.get("op"))
            reply, blob = {"ok": False, "error": f"{type(err).__name__}: {err}"}, b""
        reply["cpu_s"] = time.thread_time() - c0
        send_message(conn, reply, blob)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
