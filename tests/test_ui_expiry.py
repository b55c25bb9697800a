"""Expired browser sessions are shut down once the class has left (pages/expiry.py).

Runs against Streamlit's real session storage and TTL cache; only the clock and the
sessions are stand-ins. The last test fails when a Streamlit upgrade moves the internals
``drop_expired_sessions`` reaches for, so the fix cannot silently stop working.
"""
from __future__ import annotations

import inspect
import threading
from types import SimpleNamespace

from streamlit.runtime import Runtime
from streamlit.runtime.caching.ttl_cache import TTLCache
from streamlit.runtime.memory_session_storage import MemorySessionStorage
from streamlit.runtime.session_manager import SessionInfo
from streamlit.runtime.websocket_session_manager import WebsocketSessionManager

from resnet_viz.ui.expiry import drop_expired_sessions


class _Session:
    def __init__(self, sid: str) -> None:
        self.id, self.shut = sid, 0

    def shutdown(self) -> None:
        self.shut += 1


def _manager(clock: list[float]) -> SimpleNamespace:
    storage = MemorySessionStorage(ttl_seconds=120)
    storage._cache = TTLCache(maxsize=128, ttl=120, timer=lambda: clock[0])
    return SimpleNamespace(_session_storage=storage, _storage_lock=threading.Lock())


def test_only_sessions_past_their_ttl_are_shut_down():
    clock = [0.0]
    mgr = _manager(clock)
    old = [_Session(f"old{i}") for i in range(3)]
    for s in old:
        mgr._session_storage.save(SessionInfo(client=None, session=s))
    clock[0] = 100.0
    recent = _Session("recent")                      # a laptop that may still reconnect
    mgr._session_storage.save(SessionInfo(client=None, session=recent))
    clock[0] = 130.0
    assert drop_expired_sessions(mgr) == 3
    assert [s.shut for s in old] == [1, 1, 1] and recent.shut == 0
    assert mgr._session_storage.get("recent") is not None
    assert len(mgr._session_storage._cache._data) == 1   # the expired ones are gone, not hidden
    assert drop_expired_sessions(mgr) == 0               # once


def test_a_failing_shutdown_does_not_stop_the_others():
    clock = [0.0]
    mgr = _manager(clock)
    bad, good = _Session("bad"), _Session("good")
    bad.shutdown = lambda: 1 / 0                         # type: ignore[method-assign]
    for s in (bad, good):
        mgr._session_storage.save(SessionInfo(client=None, session=s))
    clock[0] = 500.0
    assert drop_expired_sessions(mgr) == 2 and good.shut == 1


def test_unknown_shapes_and_no_runtime_do_nothing():
    assert drop_expired_sessions(SimpleNamespace()) == 0
    assert drop_expired_sessions(SimpleNamespace(_session_storage=object())) == 0
    assert drop_expired_sessions() == 0                  # no Streamlit runtime in this process


def test_streamlit_still_has_the_internals_it_reaches_for():
    assert "self._session_mgr" in inspect.getsource(Runtime.__init__)
    init = inspect.getsource(WebsocketSessionManager.__init__)
    assert "self._session_storage" in init and "self._storage_lock" in init
    assert isinstance(MemorySessionStorage()._cache, TTLCache)
    assert callable(TTLCache.expire)
