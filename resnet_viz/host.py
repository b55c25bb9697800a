"""The trainer host: the loop a worker process runs (``python -m resnet_viz.host``).

It holds trainers by id and answers one request with one reply on its stdin/stdout pipe,
until the pipe closes. Frames are a JSON header plus raw bytes (weights): nothing is
unpickled, and only this module's operations run. ``procs.py`` is the server's side and
says why training lives in processes. Nothing here imports streamlit.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import struct
import sys
import time
from typing import Any, BinaryIO

from .memtrim import give_back_memory, limit_arenas
from .spec import ExperimentSpec

log = logging.getLogger(__name__)
_HEADER = struct.Struct("!II")  # JSON length, blob length
_MAX_FRAME = 1 << 30
NICE = int(os.environ.get("RESNET_VIZ_HOST_NICE", "10"))


def _send(stream: BinaryIO, msg: dict[str, Any], blob: bytes = b"") -> None:
    head = json.dumps(msg).encode()
    stream.write(_HEADER.pack(len(head), len(blob)) + head + blob)
    stream.flush()


def _recv(stream: BinaryIO) -> tuple[dict[str, Any], bytes] | None:
    """One frame, or None at end of stream."""
    raw = stream.read(_HEADER.size)
    if len(raw) < _HEADER.size:
        return None
    n_head, n_blob = _HEADER.unpack(raw)
    if n_head > _MAX_FRAME or n_blob > _MAX_FRAME:
        raise ValueError("frame too large")
    head, blob = stream.read(n_head), stream.read(n_blob)
    if len(head) < n_head or len(blob) < n_blob:
        return None
    return json.loads(head), blob


def _drop(trainers: dict[str, Any], ids: list[str]) -> None:
    dropped = [trainers.pop(tid, None) for tid in ids]
    if any(dropped) and not trainers:  # idle: hand the ended runs' heap back to the OS
        del dropped
        give_back_memory()


def _build(trainers: dict[str, Any], tid: str, spec_dict: dict[str, Any], data_dir: str) -> str:
    """Build trainer ``tid``; "" or the reason it cannot be built (for people)."""
    from .training import trainer_for
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
        from .training import warm_up
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
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print() must not corrupt the protocol
    inp = os.fdopen(0, "rb")
    trainers: dict[str, Any] = {}
    while (frame := _recv(inp)) is not None:
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
        _send(out, reply, blob)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
