"""One student as a WebSocket client (``--clients ws``): the browser's side of Streamlit's
protocol, without rendering.

It sends the page run (``rerun_script`` with the page name and query string), finds the
Start button's widget id in the deltas, "clicks" it (a trigger value), re-runs the live
fragment whenever the server asks (``auto_rerun``, as the frontend does), and watches the
deltas for two ended runs. Then it waits for ``hold`` and closes, like a tab.
"""
from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
from typing import Any

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

from classroom.constants import ENDED_RE, PAGE_PATH, TRACE

ENDED = re.compile(ENDED_RE.encode())
TRACE_TEXT = re.compile(rb"(?:finished|step \d|waiting|Could not|error)[^\x00-\x1f\"]{0,40}")


async def ws_student(server_url: str, params: dict[str, str], delay: float, timeout: float,
                     record: dict[str, Any], hold: asyncio.Event) -> None:
    """After ``delay`` s, one tab on ``server_url`` with ``params``; results in ``record``."""
    await asyncio.sleep(delay)
    await WsStudent(server_url, params, record).run(timeout, hold)


class WsStudent:
    """One tab's conversation with the server (see the module doc)."""

    def __init__(self, server_url: str, params: dict[str, str], record: dict[str, Any]) -> None:
        self.query = urllib.parse.urlencode(params)
        self.ws_url = server_url.replace("http://", "ws://") + "/_stcore/stream"
        self.record = record
        record.update(url=f"{server_url}/{PAGE_PATH}?{self.query}", ok=False)
        self.counts = record.setdefault("messages", {"received": 0, "fragment_reruns_sent": 0,
                                                     "full_runs": 0})
        self.loop_tasks: dict[str, asyncio.Task] = {}   # fragment id -> its auto-rerun timer
        self.page_hash = ""        # from the navigation message, sent back with every run (as the frontend)
        self.start_id: str | None = None     # the Start button's widget id, once drawn
        self.clicked: float | None = None    # when Start was first pressed
        self.pressed: set[str] = set()
        self.seen = 0              # ended statuses within the current run
        self.t0 = time.perf_counter()
        self.ws: Any = None

    def rerun(self, widgets: list[Any] | None = None, fragment_id: str = "") -> bytes:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string, cs.page_name, cs.page_script_hash = self.query, PAGE_PATH, self.page_hash
        if fragment_id:
            cs.fragment_id, cs.is_auto_rerun = fragment_id, True
        for w in widgets or []:
            cs.widget_states.widgets.append(w)
        return msg.SerializeToString()

    async def auto(self, fragment_id: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.ws.send(self.rerun(fragment_id=fragment_id))
            self.counts["fragment_reruns_sent"] += 1

    async def run(self, timeout: float, hold: asyncio.Event) -> None:
        self.t0 = time.perf_counter()
        try:
            async with websockets.connect(self.ws_url, subprotocols=["streamlit"], max_size=None,
                                          open_timeout=timeout, ping_interval=None) as ws:
                self.ws = ws
                await ws.send(self.rerun())
                await self._converse(time.perf_counter() + timeout, hold)
                self._cancel_loops()
                await hold.wait()       # stay connected until the whole class is done, then close
        except Exception as err:
            self.record["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            self.record["ok"] = False

    async def _converse(self, deadline: float, hold: asyncio.Event) -> None:
        """Answer the server until the result is in and the class leaves. After the result
        the tab stays a tab: it answers the server's polls and reruns (the page redraws
        once more after the end). ``deadline`` holds even while the server keeps talking."""
        while not (self.record["ok"] and hold.is_set()):
            if not self.record["ok"] and time.perf_counter() > deadline:
                raise asyncio.TimeoutError("no result before --timeout")
            try:
                raw = await asyncio.wait_for(self.ws.recv(), 0.5)
            except asyncio.TimeoutError:
                continue
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            self.counts["received"] += 1
            if TRACE:
                self._trace(msg, raw)
            if not await self._handle(msg, raw):
                break

    async def _handle(self, msg: Any, raw: bytes) -> bool:
        """React to one message as the frontend would; False ends the conversation."""
        kind = msg.WhichOneof("type")
        if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._on_element(msg.delta.new_element, raw)
        elif kind == "new_session" and not msg.metadata.run.fragment_ids:
            self.counts["full_runs"] += 1
            # A full run starts: the frontend drops every fragment timer here; the
            # fragments of this run announce themselves again.
            self._cancel_loops()
        elif kind == "navigation":         # st.navigation resolved the page
            self.page_hash = msg.navigation.page_script_hash
        elif kind == "auto_rerun":
            fid = msg.auto_rerun.fragment_id
            if fid not in self.loop_tasks:
                self.loop_tasks[fid] = asyncio.create_task(self.auto(fid, msg.auto_rerun.interval))
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids or list(self.loop_tasks):
                task = self.loop_tasks.pop(fid, None)
                if task:
                    task.cancel()
        elif kind == "script_finished":
            await self._on_script_finished()
        elif kind == "session_event" and msg.session_event.WhichOneof("type") == "script_compilation_exception":
            self.record["errors"] = ["script compilation exception"]
            return False
        return True

    def _on_element(self, el: Any, raw: bytes) -> None:
        if el.WhichOneof("type") == "button" and el.button.id.endswith(("-start", "-start_anyway")):
            self.start_id = el.button.id     # a big run asks again: "Start anyway"
        if self.clicked is not None and not self.record["ok"]:
            self.seen += len(ENDED.findall(raw))
            if self.seen >= 2:
                self.record["result_s"] = time.perf_counter() - self.clicked
                self.record["since_open_s"] = time.perf_counter() - self.t0
                self.record["ok"] = True

    async def _on_script_finished(self) -> None:
        """Press Start once the run that drew it has finished (each Start button once)."""
        if self.start_id is not None and self.start_id not in self.pressed:
            if self.clicked is None:
                self.record["load_s"] = time.perf_counter() - self.t0
                self.clicked = time.perf_counter()
            self.pressed.add(self.start_id)
            await self.ws.send(self.rerun([WidgetState(id=self.start_id, trigger_value=True)]))
        self.seen = 0            # count the two statuses within one run

    def _cancel_loops(self) -> None:
        for task in self.loop_tasks.values():
            task.cancel()
        self.loop_tasks.clear()

    def _trace(self, msg: Any, raw: bytes) -> None:
        kind = msg.WhichOneof("type")
        el = msg.delta.new_element.WhichOneof("type") if kind == "delta" else ""
        self.record.setdefault("trace", []).append(
            (round(time.perf_counter() - self.t0, 2), kind, el or "",
             list(msg.metadata.run.fragment_ids)[:1],
             [t[:40].decode(errors="replace") for t in TRACE_TEXT.findall(raw)][:2]))
