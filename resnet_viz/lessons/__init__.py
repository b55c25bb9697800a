"""Lessons: guided experiments that reproduce the residual-learning papers, live.

Each lesson (one module here, named like the lesson) is a :class:`~.base.Lesson`: a short
text, a prediction the student makes before running, adjustable ``params``, the training
runs it needs (``specs(params)``, shared by spec hash through the job queue), the analysis
of the trained runs (``analyse``), its figures, and its headline ``claim`` with our measured
numbers beside the paper's. ``runner.run_lesson`` runs one headless; ``resnet_viz.cli.lesson``
is ``python -m resnet_viz lesson NAME``; ``resnet_viz.ui.lesson_runs`` drives one through the
job queue for the page.

Layer: above ``figures`` and the science layers, which it imports; never ``serve``, ``ui`` or
streamlit. The registry loads on first use (PEP 562 ``__getattr__``), so
``import resnet_viz.cli.lesson`` stays as light as the rest of the command line until a lesson
actually runs.

Example::

    from resnet_viz.lessons.runner import run_lesson
    doc = run_lesson("degradation", {"depths": (4, 16), "seeds": (0,)})
    doc["claim"]["holds"], doc["claim"]["ours"]
"""
from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resnet_viz.lessons.base import Claim, Lesson, Param, Prediction  # noqa: F401

# Issue #4's order: the trainer-only lessons first, then the analyses. Module name = lesson name.
NAMES = ("degradation", "identity", "responses", "gradient_flow", "shattered", "singularities",
         "highway", "ensembles", "landscape", "shortcuts")

__all__ = ["NAMES", "Claim", "LESSONS", "Lesson", "Param", "Prediction", "get", "names"]


@functools.cache
def _registry() -> dict[str, "Lesson"]:
    return {n: importlib.import_module(f"{__name__}.{n}").LESSON for n in NAMES}


def __getattr__(attr: str) -> Any:
    if attr == "LESSONS":
        return _registry()
    if attr in ("Claim", "Lesson", "Param", "Prediction"):
        from resnet_viz.lessons import base
        return getattr(base, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def names() -> list[str]:
    return list(NAMES)


def get(name: str) -> "Lesson":
    """The lesson called ``name``; ValueError (a sentence for people) if there is none."""
    if name not in NAMES:
        raise ValueError(f"there is no lesson {name!r}; the lessons are: {', '.join(NAMES)}")
    return _registry()[name]
