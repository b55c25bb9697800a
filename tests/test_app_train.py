"""Train & compare: start a tiny pair, curves gain points, every control works, nothing is lost."""
from __future__ import annotations

from app_helpers import TINY, app_env, app_env_procs, chart_titled, no_exception, open_app, services, train_pair, wait_jobs  # noqa: F401
from resnet_viz.serve.pair import load_run


def _points(fig: dict) -> list[int]:
    return [len(t.get("x") or []) for t in fig["data"]]


def test_start_trains_the_pair_and_the_curves_fill(app_env):
    at = open_app("train")
    no_exception(at)
    assert at.session_state["pair"].keys == {}
    keys = train_pair(at)
    no_exception(at)
    loss = chart_titled(at, "Loss during training")
    assert len(loss["data"]) == 6 and min(_points(loss)) == 4      # train, val, train batches for both nets
    assert chart_titled(at, "Decision boundaries")                   # moons is 2-D
    assert {i.key for i in at.session_state["shelf"].items} == set(keys)
    assert [p.value for p in at.get("progress")] == [100, 100]


def test_a_pair_trained_in_worker_processes_shows_the_same_curves(app_env_procs):
    at = open_app("train")
    pool = services().queue._factory
    services().warmup.join(120)       # before it, runs train in this process (cold start)
    keys = train_pair(at)
    no_exception(at)
    assert len(pool.pids()) == 2                                     # one host per concurrent job
    loss = chart_titled(at, "Loss during training")
    assert len(loss["data"]) == 6 and min(_points(loss)) == 4
    assert chart_titled(at, "Decision boundaries")                   # weights came back from a host
    assert {i.key for i in at.session_state["shelf"].items} == set(keys)


def test_controls_work_at_any_time_and_say_why_not(app_env):
    at = open_app("train", dict(TINY, steps="50000", eval_every="1000"))
    at.button(key="ctl_pause").click().run()                          # before Start: a sentence
    assert "press Start first" in at.info[0].value
    at.button(key="start").click().run()
    for verb in ("pause", "step", "resume", "pause", "stop"):
        at.button(key=f"ctl_{verb}").click().run()
        no_exception(at)
    wait_jobs(at.session_state["pair"].keys.values())
    at.run()
    svc = services()
    assert {load_run(k, svc.queue, svc.store)["state"] for k in at.session_state["pair"].keys.values()} == {"stopped"}
    assert chart_titled(at, "Loss during training")                  # a stopped run keeps its curves
    at.button(key="ctl_reset").click().run()
    no_exception(at)
    assert at.session_state["pair"].keys == {} and len(at.session_state["shelf"]) == 2


def test_changing_a_knob_keeps_finished_runs(app_env):
    at = open_app("train")
    keys = train_pair(at)
    at.sidebar.select_slider(key="knob_depth").set_value(8).run()
    no_exception(at)
    assert any("sidebar now describes another" in i.value for i in at.info)
    assert len(chart_titled(at, "Loss during training")["data"]) == 4
    assert {r["key"] for r in at.session_state["shelf"].rows()} == set(keys)


def test_a_diverging_pair_shows_why_and_keeps_its_curves(app_env):
    at = open_app("train", dict(TINY, depth="8", width="32", lr="10", norm="none", steps="40"))
    train_pair(at)
    no_exception(at)
    assert any("diverged" in e.value for e in at.error)
    assert chart_titled(at, "Loss during training")


def test_a_big_run_shows_its_estimate_before_starting(app_env):
    at = open_app("train", {"model": "cnn", "depth": "110", "width": "64", "steps": "5000"})
    assert at.button(key="start").label == "Start…"
    at.button(key="start").click().run()
    assert any("needs about" in w.value for w in at.warning)
    assert at.button(key="start_anyway") and at.session_state["pair"].keys == {}
