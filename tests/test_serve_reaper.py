"""Session release without streamlit: quiet sessions go, connected or returning ones stay."""
from __future__ import annotations

import threading

import pytest

from resnet_viz.serve.reaper import POLLS_PER_S, SessionReaper, poll_every, reaper_threads


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def make(active=lambda sid: None, **kw):
    released: list[str] = []
    clock = Clock()
    reaper = SessionReaper(released.append, active, timeout_s=20, max_idle_s=600, clock=clock, **kw)
    return reaper, released, clock


def test_quiet_sessions_are_released_after_the_timeout():
    reaper, released, clock = make()
    reaper.touch("a"), reaper.touch("b")
    clock.t = 15
    reaper.touch("b")
    assert reaper.reap() == [] and released == []
    clock.t = 21
    assert reaper.reap() == ["a"] and released == ["a"]
    clock.t = 40
    assert reaper.reap() == ["b"] and reaper.tracked() == 0


def test_a_connected_session_is_kept_until_max_idle():
    reaper, released, clock = make(active=lambda sid: sid == "tab")
    reaper.touch("tab"), reaper.touch("gone")
    clock.t = 100
    assert reaper.reap() == ["gone"]
    clock.t = 601
    assert reaper.reap() == ["tab"] and released == ["gone", "tab"]


def test_unknown_answers_and_failing_checks_count_as_gone():
    def boom(_sid):
        raise RuntimeError("runtime stopping")
    for active in (lambda sid: "maybe", boom):
        reaper, released, clock = make(active=active)
        reaper.touch("s")
        clock.t = 30
        assert reaper.reap() == ["s"]


def test_a_failing_release_does_not_stop_the_others():
    calls: list[str] = []

    def release(sid: str) -> None:
        calls.append(sid)
        if sid == "bad":
            raise RuntimeError("store locked")
    clock = Clock()
    reaper = SessionReaper(release, timeout_s=1, max_idle_s=10, clock=clock)
    reaper.touch("bad"), reaper.touch("good")
    clock.t = 5
    reaper.reap()
    assert sorted(calls) == ["bad", "good"] and reaper.released == 1


def test_one_daemon_thread_that_stops():
    done = threading.Event()
    reaper = SessionReaper(lambda sid: done.set(), timeout_s=0.05, max_idle_s=1, interval_s=0.02)
    before = len(reaper_threads())
    reaper.start().start()                       # idempotent
    assert len(reaper_threads()) == before + 1 and reaper_threads()[-1].daemon
    reaper.touch("s")
    assert done.wait(120)
    reaper.stop()
    assert not reaper.running and len(reaper_threads()) == before


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        SessionReaper(lambda s: None, timeout_s=30, max_idle_s=10)


def test_tabs_poll_every_second_in_a_class_and_less_often_in_a_crowd():
    assert poll_every(0) == poll_every(1) == poll_every(35) == poll_every(40) == 1.0
    assert poll_every(80) == 2.0
    assert poll_every(10_000) == 4.0                     # a live chart still moves
    reaper, _, _ = make()
    for i in range(100):
        reaper.touch(f"s{i}")
    assert reaper.poll_every() == 2.5
    # the server's render rate stays near POLLS_PER_S once the interval stretches
    assert all(abs(n / poll_every(n) - POLLS_PER_S) < 1e-9 for n in (40, 80, 120))


def test_memory_is_given_back_once_after_the_class_has_left():
    trims: list[float] = []
    reaper, released, clock = make(trim=lambda: trims.append(clock.t), trim_after_s=150)
    reaper.touch("a")
    assert not reaper.trim_when_quiet()                  # a class is here
    clock.t += 30
    reaper.reap()
    assert released == ["a"]
    assert not reaper.trim_when_quiet()                  # quiet from now ...
    clock.t += 149
    assert not reaper.trim_when_quiet()                  # ... not for long enough yet
    clock.t += 2
    assert reaper.trim_when_quiet() and len(trims) == 1
    clock.t += 1000
    assert not reaper.trim_when_quiet() and len(trims) == 1   # once per quiet spell
    reaper.touch("b")
    reaper.trim_when_quiet()
    reaper.forget("b")
    reaper.trim_when_quiet()
    clock.t += 151
    assert reaper.trim_when_quiet() and len(trims) == 2  # the next class left too


def test_give_back_memory_and_limit_arenas_run_here():
    from resnet_viz.serve.memory import give_back_memory, limit_arenas
    assert give_back_memory() is True                    # glibc on this project's machines
    assert limit_arenas(8) is True
