"""How long a run will take, said before it starts.

A cost model, not a benchmark: one optimisation step costs

    overhead · (weight layers)  +  3 · batch · MACs / speed     (forward + backward ≈ 3 forwards)

plus the amortised evaluation (up to ``EVAL_CAP`` train and val examples, forward only, every
``eval_every`` steps). On a 2-core CPU small MLPs are dominated by the per-layer overhead of
autograd and Python, CNNs by their multiply-accumulates; both constants were measured on
this class of machine with one torch thread per job (the queue's setting) and are refined
at run time by :class:`SpeedCalibrator` from the speeds of runs that actually finished.
Importing this module loads no torch: the MAC count imports it when it first counts.
"""
from __future__ import annotations

import functools
import math
import statistics
import threading
from collections import deque
from typing import Iterable

from resnet_viz.spec import ExperimentSpec

# Examples per split the trainer evaluates on (bounded cost on big sets). Kept here, where the
# cost model reads it, so that importing this module loads no torch; the trainer imports it.
EVAL_CAP = 2048
MACS_PER_S = 12e9           # one CPU core, measured on a 2-core server (convs on 8×8 digits)
LAYER_OVERHEAD_S = 5.5e-4   # per weight layer per step (forward + backward + optimiser), measured
EVAL_OVERHEAD_S = 2e-3      # per evaluation call, besides its MACs
BIG_RUN_S = 60.0            # above this, the app shows the estimate and asks before starting


# Everything the net's shape depends on: two specs that agree here have the same MACs.
# (folder_id: a "folder" spec needs one to exist; image_size and folder_classes shape its net.)
ARCHITECTURE = ("model", "dataset", "depth", "width", "block", "mlp_block_layers", "shortcut",
                "shortcut_mask", "norm", "folder_id", "image_size", "folder_classes")


def forward_macs(spec: ExperimentSpec) -> int:
    """Multiply-accumulates of one forward pass of one example: half the FLOPs of torch's own
    flop formulas (``torch.utils.flop_counter.flop_registry``, what ``FlopCounterMode`` sums)
    for the spec's net (weights only; BN, biases and activations are cheap next to them).
    Cached per architecture."""
    return architecture_macs(ExperimentSpec(**{f: getattr(spec, f) for f in ARCHITECTURE}))


@functools.lru_cache(maxsize=256)
def architecture_macs(spec: ExperimentSpec) -> int:
    """Count one forward of the spec's net built on the ``meta`` device (shapes, no memory).

    Uncached this costs ~15 ms for a small MLP, ~200 ms for a 110-layer CNN, and ~1 s on the
    first call of a process (torch loads its meta kernels): hence the cache above and the
    UI's warm-up. Not ``FlopCounterMode`` itself: to name the modules of its table it hooks
    every module's forward in the whole process (``torch.utils.module_tracker``), and a
    captum backward in another thread then fails ("A leaf node was passed to
    _will_engine_execute_node", 58 of 200 saliency calls in one test). A dispatch mode is
    thread-local, so ``flop_sum`` sums the same registry for this thread's ops alone.
    """
    import torch   # lazily: importing the cost model must not load torch (the CLI parser)

    from resnet_viz.nets.models import build_cnn, build_mlp

    shape, classes = spec.data_shape()
    with torch.device("meta"):
        net = (build_cnn(spec, shape[0], classes) if spec.model == "cnn"
               else build_mlp(spec, math.prod(shape), classes))
        x = torch.empty((1, *shape))
    net.eval()   # BN on one example: eval mode (train mode would refuse a batch of one)
    counter = flop_sum()
    with counter, torch.no_grad():
        net(x)
    return counter.total // 2


@functools.cache
def _flop_sum_class() -> type:
    from torch.utils._python_dispatch import TorchDispatchMode   # FlopCounterMode's own base
    from torch.utils.flop_counter import flop_registry

    class FlopSum(TorchDispatchMode):
        """Adds torch's flop formula of every op this thread dispatches."""

        def __init__(self) -> None:
            super().__init__()
            self.total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 (torch's protocol)
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func.overloadpacket)
            if formula is not None:
                self.total += formula(*args, **kwargs, out_val=out)
            return out
    return FlopSum


def flop_sum():
    """A fresh thread-local flop counter (``with flop_sum() as c: ...; c.total``)."""
    return _flop_sum_class()()


def warm_up() -> None:
    """Count the default pair now: a process's first count loads torch's meta kernels
    (~1 s), which the warm-up thread pays instead of the first student's first page."""
    for spec in (ExperimentSpec(), ExperimentSpec().plain_twin()):
        forward_macs(spec)


def weight_layers(spec: ExperimentSpec) -> int:
    """Weight layers a step runs through (the per-layer overhead scales with them)."""
    per_block = spec.mlp_block_layers if spec.model != "cnn" else (3 if spec.block == "bottleneck" else 2)
    gated = spec.shortcut == "gated"
    return 2 + spec.n_blocks * (per_block + (1 if gated else 0))


def step_seconds(spec: ExperimentSpec, macs_per_s: float = MACS_PER_S) -> float:
    """Predicted seconds per training step, evaluation amortised."""
    macs = forward_macs(spec)
    train = LAYER_OVERHEAD_S * weight_layers(spec) + 3.0 * spec.batch_size * macs / macs_per_s
    n_eval = min(2 * EVAL_CAP, spec.n_samples)
    evaluation = EVAL_OVERHEAD_S * weight_layers(spec) / 10 + n_eval * macs / macs_per_s
    return train + evaluation / max(1, spec.eval_every)


def estimate_seconds(spec: ExperimentSpec, factor: float = 1.0) -> float:
    """Predicted seconds for the whole run; ``factor`` scales the model (calibration)."""
    return spec.steps * step_seconds(spec) * factor


def pair_seconds(specs: Iterable[ExperimentSpec], workers: int, factor: float = 1.0) -> float:
    """Wall time for several runs on ``workers`` parallel workers (longest-first packing)."""
    times = sorted((estimate_seconds(s, factor) for s in specs), reverse=True)
    lanes = [0.0] * max(1, workers)
    for t in times:
        lanes[lanes.index(min(lanes))] += t
    return max(lanes, default=0.0)


def describe(seconds: float) -> str:
    """'a few seconds', 'about 40 s', 'about 3 min', 'about 1.5 h'."""
    if seconds < 5:
        return "a few seconds"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


class SpeedCalibrator:
    """Scales the cost model by how fast finished runs really were on this server.

    ``observe`` takes a run's spec and its measured steps/s; ``factor`` is the median of
    measured / predicted step time over the last ``window`` runs (1.0 before any), clipped
    to [0.1, 10] so one odd run cannot make every estimate absurd. Thread-safe.
    """

    def __init__(self, window: int = 32) -> None:
        self._ratios: deque[float] = deque(maxlen=window)
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def observe(self, spec: ExperimentSpec, steps_per_s: float | None) -> None:
        if not steps_per_s or not math.isfinite(steps_per_s) or steps_per_s <= 0:
            return
        key = spec.spec_hash()
        with self._lock:
            if key in self._seen:  # 30 students watching one run count it once
                return
            if len(self._seen) > 4096:
                self._seen.clear()
            self._seen.add(key)
            self._ratios.append((1.0 / steps_per_s) / step_seconds(spec))

    @property
    def factor(self) -> float:
        with self._lock:
            ratios = list(self._ratios)
        return min(10.0, max(0.1, statistics.median(ratios))) if ratios else 1.0

    def estimate(self, spec: ExperimentSpec) -> float:
        return estimate_seconds(spec, self.factor)
