"""Trainer: reproducible, fair between twins, stops cleanly on divergence, bounded memory."""
import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F

from resnet_viz.train.history import BoundedLog
from resnet_viz.train.precise_bn import PRECISE_BN_IMAGES, precise_bn
from resnet_viz.spec import ExperimentSpec
from resnet_viz.train.trainer import (Trainer, lr_factor, model_from_bytes, model_to_bytes,
                                 resolve_device, run_training)

TINY = ExperimentSpec(dataset="moons", depth=4, width=8, steps=40, eval_every=10, log_every=5,
                      n_samples=300)


def test_same_spec_same_history():
    a, _ = run_training(TINY)
    b, _ = run_training(TINY)
    assert a["history"] == b["history"] and a["grad_norms"] == b["grad_norms"]


def test_chunking_does_not_change_the_run():
    t1, t2 = Trainer(TINY), Trainer(TINY)
    t1.train_steps(40)
    for _ in range(8):
        t2.train_steps(5)
    assert t1.snapshot()["history"] == t2.snapshot()["history"]


def test_twins_see_the_same_batches():
    res, plain = Trainer(TINY), Trainer(TINY.plain_twin())
    for _ in range(7):  # crosses an epoch boundary (240 train points / 128)
        xr, yr = res._next_batch()
        xp, yp = plain._next_batch()
        assert torch.equal(xr, xp) and torch.equal(yr, yp)


def test_snapshot_schema_and_json():
    snap, trainer = run_training(TINY)
    json.dumps(snap)
    assert snap["status"] == "finished" and snap["final"]["stopped_reason"] == "finished"
    h = snap["history"]
    assert h["step"] == [0, 10, 20, 30, 40]
    assert all(len(h[k]) == len(h["step"]) for k in h)
    assert snap["probe_step"] == list(range(0, 40, 5))
    assert all(len(r) == len(snap["layer_names"]) for r in snap["grad_norms"])
    assert all(len(r) == len(snap["response_names"]) for r in snap["response_std"])
    assert snap["final"]["device"] == str(trainer.device) and snap["final"]["steps_per_s"] > 0


def hooked_precise_bn_loss(model: torch.nn.Module, batches: list[torch.Tensor], x: torch.Tensor,
                           y: torch.Tensor) -> float:
    """An independent precise-BN reference, written without ``update_bn`` or BN's momentum:
    forward hooks record every BN layer's per-batch input mean and unbiased variance in train
    mode (what each layer sees while training), the averages over the batches become the
    layers' statistics, and the copy is evaluated in eval mode."""
    ref = copy.deepcopy(model)
    bns = [m for m in ref.modules() if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d)]
    sums = {id(m): [0.0, 0.0] for m in bns}

    def record(mod, inputs):
        z = inputs[0].transpose(0, 1).flatten(1)          # (channels, everything else)
        sums[id(mod)][0] = sums[id(mod)][0] + z.mean(1)
        sums[id(mod)][1] = sums[id(mod)][1] + z.var(1, unbiased=True)
    handles = [m.register_forward_pre_hook(record) for m in bns]
    with torch.no_grad():
        ref.train()
        for b in batches:
            ref(b)
        for h in handles:
            h.remove()
        for m in bns:
            m.running_mean.copy_(sums[id(m)][0] / len(batches))
            m.running_var.copy_(sums[id(m)][1] / len(batches))
        return float(F.cross_entropy(ref.eval()(x), y))


def test_evaluation_matches_direct_computation():
    trainer = Trainer(TINY)
    trainer.train_steps(10)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    row = trainer.evaluate()
    assert trainer.model.training  # evaluate() restores train mode
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)   # BN's running stats restored
    model = copy.deepcopy(trainer.model)
    cal = trainer.data.x_train[:PRECISE_BN_IMAGES]
    with precise_bn(model, [cal[i:i + TINY.batch_size] for i in range(0, len(cal), TINY.batch_size)]):
        with torch.no_grad():
            out = model.eval()(trainer.data.x_val)
    assert row["val_loss"] == pytest.approx(float(F.cross_entropy(out, trainer.data.y_val)), rel=1e-5)
    assert row["val_acc"] == pytest.approx(float((out.argmax(1) == trainer.data.y_val).float().mean()))
    hist = trainer.snapshot()["history"]
    assert hist["batch_loss_mean"][0] is None               # step 0: no minibatch yet
    assert math.isfinite(hist["batch_loss_mean"][1])         # step 10: the mean of 10 minibatch losses
    assert row["batch_loss_mean"] is None                   # none since that point


DEEP = dict(dataset="digits", depth=56, width=16, steps=120, eval_every=60, log_every=60, lr=0.1, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("shortcut", ["none", "identity"])
def test_logged_losses_agree_with_an_independent_precise_bn_loss(model, shortcut):
    """He-init deep nets at step 0, early and at the end: the logged training loss is within
    10% of an independently computed precise-BN loss (the old eval-mode numbers were 3.3e7
    and 16.7 where the real losses were 2.6 and 1.0)."""
    spec = ExperimentSpec(model=model, shortcut=shortcut, **DEEP)
    trainer = Trainer(spec)
    cal = trainer.data.x_train[:PRECISE_BN_IMAGES]
    batches = [cal[i:i + spec.batch_size] for i in range(0, len(cal), spec.batch_size)]
    x, y = trainer.data.x_train[:2048], trainer.data.y_train[:2048]
    for target in (0, 60, 120):
        trainer.train_steps(target - trainer.step)
        logged = trainer.snapshot()["history"]["train_loss"][-1]
        assert trainer.snapshot()["history"]["step"][-1] == target
        ref = hooked_precise_bn_loss(trainer.model, batches, x, y)
        assert logged == pytest.approx(ref, rel=0.10), (target, logged, ref)
        assert math.isfinite(logged) and logged < 50


def test_divergence_stops_with_reason_and_keeps_history():
    spec = TINY.replace(lr=10.0, norm="none", depth=8, width=32, steps=200, momentum=0.99)
    snap, trainer = run_training(spec)
    assert snap["status"] == "diverged" and "diverged" in snap["final"]["stopped_reason"]
    assert trainer.step < spec.steps
    assert len(snap["history"]["step"]) >= 1 and len(snap["probe_step"]) >= 1
    json.dumps(snap)  # NaN-free enough to serialise (json allows NaN tokens)


def test_stop_keeps_everything():
    trainer = Trainer(TINY)
    trainer.train_steps(12)
    trainer.stop("stopped by user")
    assert trainer.train_steps(10) == 0
    snap = trainer.snapshot()
    assert snap["status"] == "stopped" and snap["step"] == 12 and snap["history"]["step"] == [0, 10]


def test_history_is_bounded():
    log = BoundedLog(("step", "v"), max_points=10)
    kept = 0
    for s in range(1000):
        if log.wants(s, 1):
            log.append(step=s, v=float(s))
            kept += 1
        assert len(log) <= 11
    steps = log.to_dict()["step"]
    gaps = {b - a for a, b in zip(steps, steps[1:-1])}
    assert steps[0] == 0 and len(gaps) <= 2  # evenly spaced apart from the newest row


def test_long_run_memory_bounded():
    spec = TINY.replace(steps=3000, eval_every=5, log_every=1)
    trainer = Trainer(spec)
    trainer.train_steps(3000)
    snap = trainer.snapshot()
    assert len(snap["probe_step"]) <= 401 and len(snap["history"]["step"]) <= 401
    assert snap["history"]["step"][-1] == 3000


def test_lr_schedules():
    s = TINY.replace(steps=100, lr_schedule="step")
    assert [lr_factor(s, t) for t in (0, 49, 50, 75)] == [1.0, 1.0, 0.1, pytest.approx(0.01)]
    c = TINY.replace(steps=100, lr_schedule="cosine")
    assert lr_factor(c, 0) == 1.0 and lr_factor(c, 100) == pytest.approx(0.0, abs=1e-12)
    w = TINY.replace(warmup_steps=10)
    assert lr_factor(w, 0) == pytest.approx(0.1) and lr_factor(w, 20) == 1.0


def test_adam_and_xavier_train():
    snap, _ = run_training(TINY.replace(optimizer="adam", lr=0.01, init="xavier"))
    assert math.isfinite(snap["final"]["train_loss"])


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected and resolve_device("cuda").type == expected


def test_weights_round_trip_safely():
    _, trainer = run_training(TINY)
    blob = model_to_bytes(trainer.model)
    model = model_from_bytes(TINY, blob).eval()
    trainer.model.eval()
    x = trainer.data.x_val
    assert torch.allclose(model(x), trainer.model(x).cpu())
    with pytest.raises(Exception):
        model_from_bytes(TINY, b"not a checkpoint")


@pytest.mark.slow
def test_degradation_scaled_down():
    """He et al. Fig. 6 at classroom scale (shared/science.md): plain-56 degrades, its twin doesn't."""
    plain = ExperimentSpec(depth=56, shortcut="none", steps=300, eval_every=300, log_every=100)
    res = plain.replace(shortcut="identity")
    lp = run_training(plain)[0]["final"]["train_loss"]
    lr = run_training(res)[0]["final"]["train_loss"]
    assert lp > 1.0 and lr < 0.3, (lp, lr)


def test_stored_weights_carry_precise_bn_statistics():
    """Analyses load ``weights()`` in eval mode: they must see the logged (precise-BN) net."""
    spec = TINY.replace(dataset="digits", model="mlp", depth=8, width=16, steps=20, eval_every=20)
    trainer = Trainer(spec)
    trainer.train_steps(20)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    copy_ = model_from_bytes(spec, trainer.weights()).eval()
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    x, y = trainer.data.x_train[:2048], trainer.data.y_train[:2048]
    with torch.no_grad():
        loss = float(F.cross_entropy(copy_(x), y))
    assert loss == pytest.approx(trainer.snapshot()["history"]["train_loss"][-1], rel=1e-5)
