"""Train & compare: start a tiny pair, curves gain points, every control works, nothing is lost."""
from __future__ import annotations

from app_helpers import TINY, app_env, app_env_procs, chart_titled, no_exception, open_app, param, services, train_pair, unescaped, wait_jobs  # noqa: F401
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
    assert len(chart_titled(at, "Loss during training")["data"]) == 6        # train, val, train batches x 2
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


def _checkpoint(**changes) -> bytes:
    """The state_dict of TINY's residual net (option A shortcuts: the plain twin has the same keys)."""
    import io

    import torch

    from resnet_viz.nets.models import build_model
    from resnet_viz.spec import parse_spec

    buf = io.BytesIO()
    torch.save(build_model(parse_spec(dict(TINY, **changes))[0]).state_dict(), buf)
    return buf.getvalue()


def test_start_from_uploaded_weights_and_back_to_the_usual_init(app_env):
    import hashlib

    at = open_app("train")
    blob = _checkpoint()
    cid = hashlib.sha256(blob).hexdigest()[:16]
    at.file_uploader(key="init_upload_0").set_value(("resnet.pt", blob, "application/octet-stream")).run()
    no_exception(at)
    assert param(at, "init_from") == cid and at.session_state["spec"].init_from == cid
    assert f"start from checkpoint {cid} (resnet.pt)" in unescaped(at.success[0].value)
    keys = train_pair(at)
    svc = services()
    assert {load_run(k, svc.queue, svc.store)["state"] for k in keys} == {"finished"}
    at.button(key="init_none").click().run()
    no_exception(at)
    assert param(at, "init_from") is None and not [b for b in at.button if b.key == "init_none"]
    assert [u.key for u in at.get("file_uploader")] == ["init_upload_1"]      # a fresh uploader


def test_a_bad_checkpoint_gets_a_sentence_and_the_uploader_stays(app_env):
    at = open_app("train")
    for name, blob, says in (("evil.pkl", b"\x80\x04K\x01.", "is not a .pt / .pth / .th file"),
                             ("junk.pt", b"not a checkpoint", "not a weights-only PyTorch checkpoint")):
        at.file_uploader(key="init_upload_0").set_value((name, blob, "application/octet-stream")).run()
        no_exception(at)
        (err,) = [unescaped(e.value) for e in at.error]
        assert says in err, err
        assert param(at, "init_from") is None and [u.key for u in at.get("file_uploader")] == ["init_upload_0"]


def test_weights_that_do_not_fit_say_which_key_before_training(app_env):
    at = open_app("train")
    at.file_uploader(key="init_upload_0").set_value(("deeper.pth", _checkpoint(depth="8"), "")).run()
    no_exception(at)
    assert param(at, "init_from")
    notes = [unescaped(w.value) for w in at.warning]
    assert len(notes) == 2 and all("do not fit" in n and "the checkpoint has 'blocks.4." in n for n in notes), notes
    at.sidebar.select_slider(key="knob_depth").set_value(8).run()             # the net it was saved from
    no_exception(at)
    assert not at.warning and param(at, "init_from")


def test_a_link_to_weights_this_server_lacks_says_so(app_env):
    at = open_app("train", dict(TINY, init_from="0123456789abcdef"))
    no_exception(at)
    assert param(at, "init_from") == "0123456789abcdef"
    (note,) = [unescaped(w.value) for w in at.warning]
    assert "weights this server does not have" in note and "upload it again" in note
    at.button(key="init_none").click().run()
    assert param(at, "init_from") is None and not at.warning
