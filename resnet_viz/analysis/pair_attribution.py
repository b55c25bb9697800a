"""One input explained by a plain net and its residual twin: what the attribution page shows.

Wraps ``attribution.py`` (captum) for several nets at once with one overall progress
callback and JSON-safe output, so the page only draws. Saliency: Simonyan et al. 2014;
integrated gradients: Sundararajan et al. 2017; per-block gradient × activation at each
block's F(x): Shrikumar et al. 2016 (or layer conductance, Dhamdhere et al. 2018).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn as nn

from resnet_viz.analysis.attribution import block_attribution, clip_steps, integrated_gradients, saliency

Progress = Callable[[float, str], None]


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> tuple[int, float]:
    """(class, probability) of the first example, the model in eval mode (restored after)."""
    was = model.training
    model.eval()
    try:
        p = torch.softmax(model(x[:1]), dim=1)[0]
    finally:
        model.train(was)
    k = int(p.argmax())
    return k, float(p[k])


def explain(models: Mapping[str, nn.Module], x: torch.Tensor, target: int, n_steps: int = 32,
            method: str = "grad_x_act", progress: Progress | None = None) -> dict[str, Any]:
    """Saliency, integrated gradients (with its completeness gap), per-block attribution and
    the prediction of every net in ``models`` (keyed "none" / "identity" / ...) for the one
    input ``x`` (1, C, H, W) and class ``target``. ``n_steps`` is clipped to [4, 200].

    Returns numpy maps (C, H, W) and plain floats; ``progress(fraction, what)`` is called as
    the work advances (integrated gradients dominate the cost). ``delta`` is captum's
    convergence delta |Σ attr − (F(x) − F(x'))| and ``change`` is |F(x) − F(x')|, the class
    score's change from the baseline that the attributions should add up to (Sundararajan
    et al. 2017, completeness): their ratio is the gap a student can read.
    """
    if x.dim() < 2 or x.shape[0] != 1:
        raise ValueError(f"explain one input at a time, shape (1, ...) (got {tuple(x.shape)})")
    steps = clip_steps(n_steps)
    report = lambda f, what: progress(min(1.0, f), what) if progress else None  # noqa: E731
    out: dict[str, Any] = {"target": int(target), "n_steps": steps, "method": method, "saliency": {},
                           "integrated": {}, "delta": {}, "change": {}, "blocks": {}, "prediction": {}}
    n = max(1, len(models))
    for i, (kind, model) in enumerate(models.items()):
        base = i / n
        report(base, f"{kind}: saliency")
        out["prediction"][kind] = predict(model, x)
        out["saliency"][kind] = saliency(model, x, target)[0].numpy()
        ig, delta = integrated_gradients(model, x, target, n_steps=steps,
                                         progress=lambda f, b=base: report(b + 0.8 * f / n, f"{kind}: integrated gradients"))
        out["integrated"][kind], out["delta"][kind] = ig[0].numpy(), float(delta.abs().max())
        # captum's delta = Σ attr − (F(x) − F(x')), so the change the attributions explain is:
        out["change"][kind] = abs(float(ig.sum()) - float(delta.sum()))
        report(base + 0.85 / n, f"{kind}: per-block attribution")
        out["blocks"][kind] = block_attribution(model, x, target, method=method, n_steps=min(steps, 16))
    report(1.0, "done")
    return out


def image_of(x: torch.Tensor) -> np.ndarray:
    """The input as a (C, H, W) numpy image for the figure."""
    return x.detach().cpu()[0].numpy()
