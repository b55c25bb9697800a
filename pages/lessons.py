"""Lessons: guided experiments reproducing the residual-learning papers (issue #4).

Thin view over ``resnet_viz.lessons``: pick a lesson (also ``?lesson=NAME``), read, predict,
Run (the runs go through the shared job queue, the analysis through a shared background
task), then the charts, the claim with our numbers beside the paper's, and a JSON download.
"""
from __future__ import annotations

import streamlit as st

from resnet_viz.ui import frame
from resnet_viz import export
from resnet_viz.lessons import LESSONS, Lesson, get
from resnet_viz.ui.lesson_runs import Analyses, LessonRun

HEAVY_S = 60.0   # issue #4: heavier settings show their estimate and ask first
ctx = frame.page("Lessons: the papers, live", cite="the papers each lesson names")


@st.cache_resource(show_spinner=False, on_release=lambda a: a.shutdown())
def analyses() -> Analyses:
    """Shared on purpose: one analysis per lesson and settings for the whole class; its
    thread pool is shut down when the cache releases it (``st.cache_resource.clear()``)."""
    return Analyses()


def settings_ui(lesson: Lesson) -> dict | None:
    """One widget per setting (lists as comma-separated text); None while one is invalid."""
    raw = {}
    with st.expander("Settings", expanded=False):
        for p in lesson.params:
            key, off = f"lp_{lesson.name}_{p.name}", ctx.cfg.classroom_mode
            if isinstance(p.default, tuple):
                raw[p.name] = st.text_input(p.name, ", ".join(map(str, p.default)), key=key, help=p.help, disabled=off)
            elif p.choices:
                raw[p.name] = st.selectbox(p.name, p.choices, key=key, help=p.help, disabled=off)
            else:
                raw[p.name] = st.number_input(p.name, value=p.default, min_value=type(p.default)(p.lo),
                                              max_value=type(p.default)(p.hi), key=key, help=p.help, disabled=off)
    try:
        return lesson.resolve(raw)
    except ValueError as err:
        st.error(f"Setting not valid: {err}")
        return None


def retry() -> None:
    run = st.session_state["lesson_run"]
    run.release(ctx.svc.queue)
    run.pump(ctx.svc.queue)


def start(run: LessonRun) -> None:
    old = st.session_state.get("lesson_run")
    if old is not None and old.key != run.key:
        old.release(ctx.svc.queue)
    st.session_state["lesson_run"] = run
    run.pump(ctx.svc.queue)


visible = [n for n in LESSONS if ctx.cfg.preset_visible(n)]
if not visible:
    st.info("The teacher has not made any lesson visible.")
    st.stop()
wanted = st.query_params.get("lesson")
if "lesson_pick" not in st.session_state or (wanted in visible and wanted != st.session_state.get("_lesson_url")):
    st.session_state["lesson_pick"] = wanted if wanted in visible else visible[0]
    st.session_state["_lesson_url"] = wanted
name = st.selectbox("Lesson", visible, key="lesson_pick", format_func=lambda n: f"{visible.index(n) + 1}. {LESSONS[n].title}")
st.query_params["lesson"] = st.session_state["_lesson_url"] = name
lesson = get(name)
st.markdown(lesson.text)
st.caption("Papers: " + "; ".join(lesson.papers) + ". Figures: " + ", ".join(lesson.paper_figures) + ".")
params = settings_ui(lesson)
if params is None:
    st.stop()
run = LessonRun(lesson, params, ctx.sid)
ours = st.session_state.get("lesson_run")
started = ours is not None and ours.key == run.key
guess = st.radio(f"**Your prediction:** {lesson.prediction.question}", lesson.prediction.options, index=None,
                 key=f"pred_{name}", disabled=started)
seconds = lesson.estimate_s(params)
heavy = seconds > HEAVY_S and not st.checkbox(f"These settings need about {seconds:.0f} s of computing on this "
                                               "server, shared with the class. Run anyway?", key=f"heavy_{name}")
try:
    run.check(ctx.cfg)
except ValueError as err:
    st.error(f"The lesson cannot run with these settings: {err}")
    st.stop()
if not started:
    st.button("Run the lesson", type="primary", disabled=guess is None or heavy, on_click=start, args=(run,),
              key="lesson_start", icon=":material/play_arrow:",
              help="Answer the prediction first." if guess is None else None)
    st.caption(f"Estimated time: about {seconds:.0f} s on one CPU worker.")
    st.stop()


@st.fragment(run_every=ctx.svc.reaper.poll_every())   # 1 s, longer when the class is here
def progress_view() -> None:
    ctx.svc.reaper.touch(ctx.sid)
    ours.pump(ctx.svc.queue)
    status = ours.status(ctx.svc.queue, ctx.svc.store)
    task = analyses().get(ours.key)
    if task is None and status["trained"]:
        task = analyses().start(ours, ctx.svc.queue, ctx.svc.store)
    if status["problems"]:
        st.error("Some runs did not finish: " + "; ".join(status["problems"]) + ".")
        st.button("Run them again", key="lesson_retry", on_click=retry)
    elif task is None:
        st.progress(status["fraction"], text=f"Training: {status['done']}/{status['n']} runs done "
                                             "(shared with every student who runs the same settings)")
    elif task.state == "analysing":
        st.progress(task.fraction, text=f"Analysing: {task.message}")
    else:
        st.rerun()


task = analyses().get(ours.key)
if task is None or task.state == "analysing":
    progress_view()
    st.stop()
if task.state == "failed":
    st.error(f"The analysis failed: {task.error}")
    st.button("Analyse again", key="lesson_reanalyse", on_click=analyses().start,
              args=(ours, ctx.svc.queue, ctx.svc.store))
    st.stop()
doc = task.doc
claim, options = doc["claim"], lesson.prediction.options
(st.success if claim["holds"] else st.warning)(f"**{'Confirmed' if claim['holds'] else 'Not confirmed'} here:** "
                                               f"{claim['text']}")
st.markdown(f"**Our numbers:** {claim['ours']}\n\n**The paper:** {claim['paper']}")
if claim["note"]:
    st.caption(claim["note"])
st.info(f"You predicted *{guess or '—'}*. Our measurement supports *{options[doc['outcome']]}*; "
        f"the paper: *{options[lesson.prediction.expected]}*."
        + (" Your prediction matched." if guess == options[doc["outcome"]] else " Your prediction did not match."))
with frame.shown_errors("A chart could not be drawn"):
    for i, fig in enumerate(lesson.figures(doc["result"])):
        frame.chart(fig, f"lesson_fig_{name}_{i}")
frame.download("Lesson result (JSON)", lambda: export.to_json(doc), f"lesson_{name}.json", "dl_lesson")
