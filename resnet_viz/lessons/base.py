"""What a lesson is: text, a prediction, the runs it needs, its analysis, figures and claim.

A :class:`Lesson` is data plus pure functions, so the same lesson runs headless
(``lessons.runner``, the CLI) and on the page (training through the shared job queue, then
the same ``analyse``). Runs are keyed by ``spec.spec_hash()``: 30 students opening the same
lesson preset share each training run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Callable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import TypeAdapter, ValidationError

from resnet_viz.spec import ExperimentSpec
from resnet_viz.validation import between, first_message, from_text, items, one_of

Snapshot = dict[str, Any]
Runs = Mapping[str, tuple[Snapshot, nn.Module]]      # spec_hash -> (snapshot, trained model)
Progress = Callable[[float, str], None] | None        # (fraction done in [0, 1], what is happening)
Value = int | float | str | tuple


@dataclass(frozen=True)
class Claim:
    """A lesson's headline claim with our measured numbers beside the paper's.

    ``holds`` is what we measured, never what the paper says; ``note`` says when a claim
    is only a trend at this scale ("weak at this scale").
    """

    holds: bool
    text: str
    ours: str
    paper: str
    note: str = ""


@dataclass(frozen=True)
class Prediction:
    """A question the student answers before running; ``expected`` is the paper's option."""

    question: str
    options: tuple[str, ...]
    expected: int


@dataclass(frozen=True)
class Param:
    """One adjustable setting: its default, bounds (numbers and list items) and help."""

    name: str
    default: Value
    help: str = ""
    lo: float | None = None
    hi: float | None = None
    max_items: int = 8
    choices: tuple[str, ...] = ()

    def parse(self, raw: Any) -> Value:
        """``raw`` (typed, or a string from a URL / the CLI) checked and typed like the default.

        Raises ValueError with a sentence for people, worded as the spec's notices: the
        checks are the shared ones of ``resnet_viz.validation``.
        """
        try:
            return _reader(self).validate_python(raw)
        except ValidationError as err:
            raise ValueError(first_message(err)) from None


@lru_cache(maxsize=None)
def _reader(param: Param) -> TypeAdapter[Any]:
    """A setting as a pydantic type, built once per setting: text from the choices, or a
    number (a list of 1 to ``max_items`` numbers for a list default) within the bounds."""
    name, default = param.name, param.default
    if isinstance(default, str):
        choices = [one_of(name, param.choices)] if param.choices else []
        return TypeAdapter(Annotated[(str, from_text(name, str), *choices)])
    kind = (type(default[0]) if default else float) if isinstance(default, tuple) else type(default)
    bounds = [between(name, param.lo, param.hi)] if (param.lo, param.hi) != (None, None) else []
    number = Annotated[(kind, from_text(name, kind), *bounds)]
    if isinstance(default, tuple):
        return TypeAdapter(Annotated[tuple[number, ...], items(name, param.max_items)])
    return TypeAdapter(number)


@dataclass(frozen=True, eq=False)
class Lesson:
    """One guided experiment (see the package docstring for the life cycle)."""

    name: str
    title: str
    papers: tuple[str, ...]
    paper_figures: tuple[str, ...]
    text: str
    prediction: Prediction
    params: tuple[Param, ...]
    specs: Callable[[dict[str, Any]], list[ExperimentSpec]]
    analyse: Callable[..., dict[str, Any]]            # (params, runs, progress=None) -> JSON-safe
    figures: Callable[[dict[str, Any]], list[Any]]    # result -> [go.Figure]
    claim: Callable[[dict[str, Any]], Claim]
    outcome: Callable[[dict[str, Any]], int]          # the prediction option our numbers support
    estimate_s: Callable[[dict[str, Any]], float]     # seconds on one CPU worker, training + analysis

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def resolve(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults overlaid with ``overrides``; ValueError (a sentence) on a bad key or value."""
        known = {p.name: p for p in self.params}
        values = self.defaults()
        for key, raw in (overrides or {}).items():
            if key not in known:
                raise ValueError(f"lesson {self.name!r} has no setting {key!r} "
                                 f"(it has: {', '.join(known)})")
            values[key] = known[key].parse(raw)
        return values


# --- helpers shared by the lessons ---------------------------------------------------

def digits_mlp(**changes: Any) -> ExperimentSpec:
    """A width-32 BN MLP on 8x8 digits, the scale science.md measured to run live."""
    return ExperimentSpec(model="mlp", dataset="digits", **changes)


def unique(specs: Sequence[ExperimentSpec]) -> list[ExperimentSpec]:
    """Specs without repeats, first occurrence kept (a lesson may list a run twice)."""
    seen: dict[str, ExperimentSpec] = {}
    for s in specs:
        seen.setdefault(s.spec_hash(), s)
    return list(seen.values())


def run_of(runs: Runs, spec: ExperimentSpec) -> tuple[Snapshot, nn.Module]:
    try:
        return runs[spec.spec_hash()]
    except KeyError:
        raise ValueError(f"the run for {spec.shortcut} depth {spec.depth} seed {spec.seed} "
                         "is missing; train the lesson's runs first") from None


def final(snapshot: Snapshot, key: str = "train_loss") -> float:
    """A final metric; NaN when the run diverged before it was measured."""
    v = (snapshot.get("final") or {}).get(key)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan


def mean(xs: Sequence[float]) -> float:
    vals = [x for x in xs if isinstance(x, (int, float)) and math.isfinite(x)]
    return sum(vals) / len(vals) if vals else math.nan


def std(xs: Sequence[float]) -> float:
    vals = [x for x in xs if isinstance(x, (int, float)) and math.isfinite(x)]
    if not vals:
        return math.nan
    m = sum(vals) / len(vals)
    return math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals))


def fmt(v: float, digits: int = 3) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}g}"


def split(spec: ExperimentSpec, which: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """The lesson run's own data split (deterministic in the spec), on CPU."""
    from resnet_viz.data.datasets import load_dataset
    data = load_dataset(spec)
    return (data.x_train, data.y_train) if which == "train" else (data.x_val, data.y_val)


@torch.no_grad()
def loss_acc(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy in eval mode on the net's own statistics (precise BN when
    it came from ``Trainer.weights``, as ``Trainer.evaluate`` logs); mode restored."""
    was = model.training
    model.eval()
    try:
        dev = next(model.parameters()).device
        out = model(x.to(dev))
        return float(F.cross_entropy(out, y.to(dev))), float((out.argmax(1) == y.to(dev)).float().mean())
    finally:
        model.train(was)


# Seconds per training step on one CPU worker (one torch thread), measured on the 2-core
# machine (docs/lessons.md), with ~30% added for a server the class shares: a BN MLP costs
# ~0.4 ms + 0.21 ms per hidden layer at width 32; the CNN ~1 ms + per layer 0.55 ms + 9 µs·width²
# on 8x8 digits (more on larger images); a Highway block ~40% more than an identity one.
WALL = 1.3


def train_cost_s(spec: ExperimentSpec) -> float:
    """Rough seconds to train ``spec`` here (for estimates and progress weights)."""
    batch = spec.batch_size / 128
    if spec.model == "cnn":
        pixels = {"digits": 64, "cifar10": 1024, "cifar100": 1024}.get(spec.dataset, 784) / 64
        per_step = 1e-3 + spec.depth * (0.55e-3 + 9e-6 * spec.width ** 2 * pixels) * max(1.0, batch)
    else:
        per_layer = 0.21e-3 * max(1.0, (spec.width / 32) ** 2 * batch)
        per_step = 0.4e-3 + per_layer * spec.depth * (1.4 if spec.shortcut == "gated" else 1.0)
    return WALL * (spec.steps * per_step + 0.1)   # + building the net and evaluating it


def specs_cost_s(specs: Sequence[ExperimentSpec]) -> float:
    return sum(train_cost_s(s) for s in unique(specs))
