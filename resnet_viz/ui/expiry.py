"""Shut down the browser sessions Streamlit keeps after their tabs have gone.

Streamlit stores a disconnected session for ``server.disconnectedSessionTTL`` (120 s) so a
tab that reconnects finds its state. Expired sessions are only dropped at the next save,
i.e. when some other tab disconnects, and are never shut down. After a class, the last ~33
sessions (their state, fragments, widget metadata, data unpickled from ``st.cache_data``)
stayed until the next class: +55 MB of the server's RSS, named by ``resnet_viz.serve.memory.trace``.
The reaper calls :func:`drop_expired_sessions` once the class has left.

This reaches into Streamlit's session manager (``_session_mgr._session_storage._cache``),
which is not public API: every step is checked, and where it has changed nothing happens.
"""
from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any

from streamlit import runtime

log = logging.getLogger(__name__)


def _expired(manager: Any) -> list[Any]:
    cache = getattr(getattr(manager, "_session_storage", None), "_cache", None)
    expire = getattr(cache, "expire", None)
    if not callable(expire):
        return []
    with getattr(manager, "_storage_lock", None) or nullcontext():
        removed = expire()
    return [info for _key, info in removed or ()]


def drop_expired_sessions(manager: Any = None) -> int:
    """Remove and shut down stored sessions past their TTL; how many. Sessions still within
    the TTL (a laptop that may reconnect) are kept. Never raises."""
    try:
        if manager is None:
            if not runtime.exists():
                return 0
            manager = getattr(runtime.get_instance(), "_session_mgr", None)
        infos = _expired(manager)
    except Exception:
        log.debug("could not reach Streamlit's stored sessions", exc_info=True)
        return 0
    for info in infos:
        try:
            info.session.shutdown()  # what close_session does for a stored session
        except Exception:
            log.debug("shutting down an expired session failed", exc_info=True)
    if infos:
        log.info("shut down %d expired browser session(s)", len(infos))
    return len(infos)
