"""Explaining one input with a plain and a residual net (wraps attribution.py)."""
from __future__ import annotations

import pytest
import torch

from resnet_viz.analysis.pair_attribution import explain, image_of, predict
from resnet_viz.nets.models import build_model
from resnet_viz.spec import ExperimentSpec


def test_explain_two_nets_reports_progress_and_shapes():
    spec = ExperimentSpec(depth=3, width=8)
    models = {"none": build_model(spec.plain_twin()).eval(), "identity": build_model(spec).eval()}
    x = torch.randn(1, 1, 8, 8)
    seen: list[float] = []
    out = explain(models, x, target=3, n_steps=500, progress=lambda f, what: seen.append(f))
    assert out["n_steps"] == 200 and out["target"] == 3
    assert out["saliency"]["none"].shape == (1, 8, 8) and len(out["blocks"]["identity"]) == 3
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert all(v < 0.1 for v in out["delta"].values())             # IG completeness
    k, p = predict(models["identity"], x)
    assert 0 <= k < 10 and 0 < p <= 1 and image_of(x).shape == (1, 8, 8)
    with pytest.raises(ValueError):
        explain(models, torch.randn(2, 1, 8, 8), 0)


def test_the_change_is_the_class_score_difference_from_the_baseline():
    """An independent reference for ``change``: the model's own logits at x and at zeros."""
    import torch

    from resnet_viz.analysis.pair_attribution import explain
    from resnet_viz.nets.models import build_model
    from resnet_viz.spec import ExperimentSpec
    model = build_model(ExperimentSpec(model="cnn", depth=8, width=4, dataset="digits")).eval()
    x = torch.randn(1, 1, 8, 8)
    res = explain({"none": model}, x, target=3, n_steps=16)
    with torch.no_grad():
        want = abs(float(model(x)[0, 3] - model(torch.zeros_like(x))[0, 3]))
    assert abs(res["change"]["none"] - want) < 1e-4 and res["method"] == "grad_x_act"
