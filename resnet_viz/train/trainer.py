"""A stepwise trainer the UI, the job queue and the CLI all drive.

He et al. 2016 §4.2 recipe by default (SGD, momentum 0.9, weight decay 1e-4, batch 128,
optional /10 steps at 50% and 75% of training). Reproducible from ``spec.seed``: the
weights (``models.init_weights``) and the batch order (its own ``torch.Generator``) depend on
nothing else, so a plain net and its residual twin see the same batches in the same order.
"""
from __future__ import annotations

import io
import logging
import math
import threading
import time
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from resnet_viz.train.estimate import EVAL_CAP
from resnet_viz.train.history import HISTORY_KEYS, BoundedLog
from resnet_viz.nets.models import Net, build_model
from resnet_viz.data.augment import pad_crop_flip
from resnet_viz.nets.checkpoints import checkpoint_file, load_weights
from resnet_viz.train.precise_bn import calibration_batches, precise_bn
from resnet_viz.train.probes import ProbeSet
from resnet_viz.spec import ExperimentSpec

log = logging.getLogger(__name__)

EXPLODE_NORM = 1e6         # a gradient norm above this ends the run as "exploding gradients"


def resolve_device(name: str | None = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU. Asking for CUDA without one falls back to CPU."""
    if name in (None, "auto", "cuda"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device("cpu")


def lr_factor(spec: ExperimentSpec, step: int) -> float:
    """Multiplier on ``spec.lr`` at ``step``: linear warm-up, then the schedule."""
    warm = min(1.0, (step + 1) / spec.warmup_steps) if spec.warmup_steps else 1.0
    t = step / max(1, spec.steps)
    if spec.lr_schedule == "step":
        return warm * (0.01 if t >= 0.75 else 0.1 if t >= 0.5 else 1.0)
    if spec.lr_schedule == "cosine":
        return warm * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
    return warm


def make_optimizer(spec: ExperimentSpec, params) -> torch.optim.Optimizer:
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)


class Trainer:
    """Owns one model, its optimiser and its logs. Not thread-safe for training (one worker
    drives it); ``snapshot()`` is safe to call from any thread while it trains.
    """

    def __init__(self, spec: ExperimentSpec, data=None, device: str | None = None,
                 data_dir: str | None = None) -> None:
        c0 = time.thread_time()
        if data is None:
            from resnet_viz.data.datasets import load_dataset
            data = load_dataset(spec)
        self.spec, self.data = spec, data
        self.device = resolve_device(device or spec.device)
        self.model: Net = build_model(spec, data.input_shape, data.n_classes)
        if spec.init_from:     # a checkpoint stored in the data folder under its id
            from resnet_viz.data.files import folder
            load_weights(self.model, checkpoint_file(spec.init_from, folder("checkpoints", data_dir)))
        self.model = self.model.to(self.device)
        self.optimizer = make_optimizer(spec, self.model.parameters())
        self.probes = ProbeSet(self.model)
        self._x, self._y = data.x_train.to(self.device), data.y_train.to(self.device)
        self._eval_sets = {"train": self._cap(data.x_train, data.y_train),
                           "val": self._cap(data.x_val, data.y_val)}
        self._batches = torch.Generator().manual_seed(spec.seed)
        self._perm = torch.empty(0, dtype=torch.long)
        self._pos = 0
        self.step = 0
        self.done = False
        self.stopped_reason: str | None = None
        self.status = "running"
        self.history = BoundedLog(HISTORY_KEYS)
        self._calibration = calibration_batches(self._x, spec.batch_size)   # precise-BN images
        self._batch_loss_sum, self._batch_losses = 0.0, 0
        self.probe_log = BoundedLog(("probe_step", "batch_loss", "grad_norms", "response_std",
                                     "branch_ratio"))
        self._lock = threading.Lock()
        self._busy_s = 0.0
        self.cpu_s = time.thread_time() - c0  # building counts: loading data is compute too

    def _cap(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:EVAL_CAP].to(self.device), y[:EVAL_CAP].to(self.device)

    # --- training ---
    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        n, bs = len(self._x), min(self.spec.batch_size, len(self._x))
        if self._pos + bs > len(self._perm):  # new epoch; drop the ragged remainder
            self._perm = torch.randperm(n, generator=self._batches)
            self._pos = 0
        idx = self._perm[self._pos:self._pos + bs].to(self.device)
        self._pos += bs
        x = self._x[idx]
        if self.spec.augment == "he":   # drawn after the batch, from the same seeded stream
            x = pad_crop_flip(x, self._batches)
        return x, self._y[idx]

    def train_steps(self, n: int) -> int:
        """Run up to ``n`` optimisation steps; fewer if the run ends. Returns steps done."""
        t0, c0, done = time.perf_counter(), time.thread_time(), 0
        try:
            if self.step == 0 and not len(self.history):
                self.evaluate()
            while done < n and not self.done:
                self._one_step()
                done += 1
        finally:
            self._busy_s += time.perf_counter() - t0
            self.cpu_s += time.thread_time() - c0
        return done

    def _one_step(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.spec.lr * lr_factor(self.spec, self.step)
        log = self.probe_log.wants(self.step, self.spec.log_every)
        if log:
            self.probes.arm()
        x, y = self._next_batch()
        try:
            loss = F.cross_entropy(self.model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            self.probes.disarm()
        loss_v = float(loss.detach())
        self._batch_loss_sum, self._batch_losses = self._batch_loss_sum + loss_v, self._batch_losses + 1
        if not math.isfinite(loss_v):
            return self.stop(f"diverged: the training loss became {loss_v} at step {self.step}; "
                             "try a smaller learning rate", status="diverged")
        if log and self._log_probes(loss_v):
            return
        self.optimizer.step()
        self.step += 1
        if self.step % self.spec.eval_every == 0 or self.step >= self.spec.steps:
            self.evaluate()
        if self.step >= self.spec.steps:
            self.stop("finished", status="finished")

    def _log_probes(self, loss_v: float) -> bool:
        """Record the probes; True if the gradients exploded and the run was stopped."""
        rec = self.probes.collect()
        with self._lock:
            self.probe_log.append(probe_step=self.step, batch_loss=loss_v, **rec)
        worst = max(rec["grad_norms"], default=0.0)
        if not math.isfinite(worst) or worst > EXPLODE_NORM:
            self.stop(f"diverged: exploding gradients (norm {worst:.3g}) at step {self.step}; "
                      "try a smaller learning rate or turn BN on", status="diverged")
            return True
        return False

    def stop(self, reason: str, status: str = "stopped") -> None:
        """End the run, keeping everything logged so far."""
        with self._lock:
            self.done, self.stopped_reason, self.status = True, reason, status

    # --- evaluation ---
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Loss and accuracy on (up to EVAL_CAP of) train and validation, in eval mode on BN
        statistics re-estimated with the current weights ("precise BN", Wu & Johnson 2021;
        ``train.precise_bn``), never on the lagging running averages; and the train-mode
        mean of the minibatch losses since the last point (``batch_loss_mean``, the curve
        most frameworks plot), which costs nothing. Training is left exactly as it was."""
        was_training = self.model.training
        try:
            with precise_bn(self.model, self._calibration):
                self.model.eval()
                row: dict[str, float] = {}
                for split, (x, y) in self._eval_sets.items():
                    row[f"{split}_loss"], row[f"{split}_acc"] = self._loss_acc(x, y)
        finally:
            self.model.train(was_training)
        row["batch_loss_mean"] = self._batch_loss_sum / self._batch_losses if self._batch_losses else None
        self._batch_loss_sum, self._batch_losses = 0.0, 0
        with self._lock:
            self.history.append(step=self.step, **row)
        return row

    def _loss_acc(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        if not len(x):
            return float("nan"), float("nan")
        loss, correct = 0.0, 0
        for i in range(0, len(x), 1024):
            out = self.model(x[i:i + 1024])
            loss += float(F.cross_entropy(out, y[i:i + 1024], reduction="sum"))
            correct += int((out.argmax(1) == y[i:i + 1024]).sum())
        return loss / len(x), correct / len(x)

    # --- reading ---
    def weights(self) -> bytes:
        """The current weights as a ``torch.save`` blob (see :func:`model_from_bytes`), with BN
        statistics re-estimated for them (precise BN, Wu & Johnson 2021). Every analysis of a
        stored or copied net (lesions, landscapes, attributions, Hessians, boundaries) runs in
        eval mode on these, so it sees what the net computes, not a lagging average. The
        training model keeps its own running statistics."""
        with precise_bn(self.model, self._calibration):
            return model_to_bytes(self.model)

    def close(self) -> None:
        """Nothing to free here (the process-backed trainer frees its host's copy)."""

    @property
    def steps_per_s(self) -> float:
        return self.step / self._busy_s if self._busy_s > 0 else 0.0

    def snapshot(self) -> dict[str, Any]:
        """A JSON-safe copy of everything logged (schema: docs/DESIGN.md). Thread-safe."""
        with self._lock:
            hist, probes = self.history.to_dict(), self.probe_log.to_dict()
            status, reason, step = self.status, self.stopped_reason, self.step
        last = {k: (hist[k][-1] if hist[k] else None)
                for k in HISTORY_KEYS[1:]}
        return {
            "spec": self.spec.to_dict(), "spec_hash": self.spec.spec_hash(),
            "step": step, "total_steps": self.spec.steps, "status": status,
            "history": hist, **probes,
            "layer_names": list(self.probes.layer_names),
            "response_names": list(self.probes.response_names),
            "final": {**last, "steps_per_s": round(self.steps_per_s, 2),
                      "device": str(self.device), "stopped_reason": reason},
        }


def run_training(spec: ExperimentSpec, data=None, progress: Callable[[int, int], None] | None = None,
                 chunk: int = 10) -> tuple[dict[str, Any], Trainer]:
    """Train to the end (or divergence); ``progress(step, total)`` after each chunk."""
    trainer = Trainer(spec, data)
    while not trainer.done:
        trainer.train_steps(chunk)
        if progress:
            progress(trainer.step, spec.steps)
    return trainer.snapshot(), trainer


def trainer_for(spec: ExperimentSpec, data_dir: str | None = None) -> Trainer:
    """A trainer whose dataset is read from ``data_dir`` (the teacher's folder with MNIST,
    CIFAR-10); the built-in sets need none. Raises DataError / SpecError (for people)."""
    from resnet_viz.data.datasets import load_dataset
    return Trainer(spec, load_dataset(spec, data_dir), data_dir=data_dir)


def warm_up() -> None:
    """Pay torch's lazy imports (the first optimiser pulls in torch._dynamo, ~2 s) and the
    default dataset's load (sklearn) now, not in a student's first run. Never raises."""
    try:
        torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        from resnet_viz.data.datasets import load_dataset
        load_dataset(ExperimentSpec())
    except Exception:  # an optimisation only; a real run reports real errors
        log.debug("warm-up failed", exc_info=True)


def model_to_bytes(model: nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


def model_from_bytes(spec: ExperimentSpec, blob: bytes) -> Net:
    """Rebuild a trained net. ``weights_only=True``: a stored blob can never run code."""
    model = build_model(spec)
    state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model
