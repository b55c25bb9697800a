"""Training-dynamics figures: loss curves, gradient norms, Fig. 6 sweeps (Fig. 7: ``responses``).

Pure builders: trainer snapshots (``Trainer.snapshot()``, schema in docs/DESIGN.md) in, a
plotly figure out. Plain is vermillion and residual blue on every page (``figures/style.py``).
Non-finite values become gaps (``None``) and every trace is cut to at most ``MAX_POINTS``
points, so a diverged run or a long history never breaks or slows a chart.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

from resnet_viz.figures import style
from resnet_viz.figures.runs import (downsample_indices, empty_note, finite, line_style, positive, probe_index,
                                     run_label, run_styles)

Run = Mapping[str, Any]
MAX_CELLS = 40_000          # heatmap cells (layers x steps) drawn at most
_METRICS = {"loss": ("cross-entropy loss (nats)", 1.0), "acc": ("accuracy (%)", 100.0)}


# split -> (history key pattern, dash, legend text). "batch" exists for the loss only.
SPLITS = {"train": ("train_{}", "solid", "train"), "val": ("val_{}", "dash", "val"),
          "batch": ("batch_loss_mean", "dot", "train batches")}


def loss_curves(runs: Sequence[Run], metric: str = "loss", splits: Sequence[str] = ("train", "val", "batch"),
                log_y: bool = False, title: str | None = None) -> go.Figure:
    """Loss or accuracy against training step, one colour per run; train solid, val dashed.

    Train and val are evaluated in eval mode on precise-BN statistics (Wu & Johnson 2021:
    the running averages lag the weights); the dotted "train batches" curve is the mean
    minibatch loss since the previous point, in train mode, drawn when a run logged it.

    He et al. 2016, Fig. 1 and Fig. 6: deeper plain nets have *higher training* loss
    (degradation, not overfitting), while their residual twins do not. Trace names are the
    same on every call and ``uirevision`` is fixed, so a live-refreshing chart keeps zoom.
    A diverged run gets a dotted line at the step where it stopped.
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be 'loss' or 'acc' (got {metric!r})")
    y_title, scale = _METRICS[metric]
    fig = go.Figure()
    for run, (label, colour, symbol) in zip(runs, run_styles(runs)):
        hist = run.get("history") or {}
        steps = list(hist.get("step") or [])
        for split in splits:
            key, dash, text = SPLITS[split]
            ys = list(hist.get(key.format(metric)) or []) if split != "batch" or metric == "loss" else []
            if split == "batch" and not any(finite(v) is not None for v in ys):
                continue
            idx = downsample_indices(min(len(steps), len(ys)))
            conv = positive if log_y else finite
            fig.add_trace(go.Scatter(
                x=[steps[i] for i in idx], y=[_scaled(conv(ys[i]), scale) for i in idx],
                name=f"{label} · {text}", legendgroup=label, connectgaps=False,
                hovertemplate=f"{label} {text}<br>step %{{x}}: %{{y:.4g}}<extra></extra>",
                **line_style(colour, symbol, dash)))
        if run.get("status") == "diverged":
            fig.add_vline(x=run.get("step", steps[-1] if steps else 0), line=dict(color=colour, dash="dot"),
                          annotation_text=f"{label} diverged", annotation_position="top left")
    what = "Loss" if metric == "loss" else "Accuracy"
    dotted = " · dotted: mean of the minibatches (train mode)" if metric == "loss" and "batch" in splits else ""
    base_title = title or f"{what} during training"
    style.base_layout(fig, base_title, "training step", y_title + (" (log scale)" if log_y else ""))
    # The key to the line styles, under the title: a half-width chart cuts a long title off.
    fig.update_layout(title_subtitle_text=f"solid: train · dashed: validation, eval mode on precise-BN statistics{dotted}")
    if log_y:
        style.log_axis(fig)
    elif metric == "acc":
        fig.update_yaxes(range=[0, 100.5])
    if not runs:
        empty_note(fig, "no runs yet")
    fig.update_layout(uirevision=f"loss_curves:{metric}")
    return fig


def _scaled(v: float | None, scale: float) -> float | None:
    return None if v is None else v * scale


def grad_norm_heatmap(run: Run, title: str | None = None) -> go.Figure:
    """log10 ‖∂L/∂W‖ of every weight layer (y, input side at 0) at every probe step (x).

    Vanishing / exploding gradients make deep plain nets hard to optimise (He et al. 2016
    §1; Glorot & Bengio 2010); the identity shortcut gives the gradient a direct path.
    Columns are thinned so at most ``MAX_CELLS`` cells are drawn.
    """
    names = list(run.get("layer_names") or [])
    steps = list(run.get("probe_step") or [])
    rows = list(run.get("grad_norms") or [])
    n = min(len(steps), len(rows))
    n_layers = max([len(names)] + [len(r) for r in rows[:n]])
    cols = downsample_indices(n, max(2, MAX_CELLS // max(1, n_layers)))
    z = [[_log10(rows[j][i]) if i < len(rows[j]) else None for j in cols] for i in range(n_layers)]
    labels = [names[i] if i < len(names) else f"layer {i}" for i in range(n_layers)]
    fig = go.Figure(go.Heatmap(
        x=[steps[j] for j in cols], y=list(range(n_layers)), z=z, colorscale=style.SEQUENTIAL,
        customdata=[[name] * len(cols) for name in labels], name="log10 grad norm",
        colorbar=dict(title=dict(text="log₁₀ ‖∂L/∂W‖")),
        hovertemplate="step %{x}<br>layer %{y}: %{customdata}<br>log₁₀‖∂L/∂W‖ = %{z:.2f}<extra></extra>"))
    style.base_layout(fig, title or f"Gradient norm of every layer during training: {run_label(run)}",
                      "training step", "weight layer (0 = input side)")
    if not n:
        empty_note(fig, "no gradient norms logged yet")
    fig.update_layout(uirevision="grad_norm_heatmap")
    return fig


def _log10(v: Any) -> float | None:
    v = positive(v)
    return None if v is None else math.log10(v)


def first_last_ratio(run: Run, at: str | int = "last") -> float:
    """‖∂L/∂W‖ of the first weight layer divided by that of the last, at one probe step.

    Far below 1: the gradient vanishes on its way to the input (deep plain nets, He et al.
    2016 §1); near 1 or above: it reaches the first layer intact. NaN when undefined (no
    probes, fewer than two layers, a non-finite or zero norm).
    """
    k = probe_index(run, at, "grad_norms")
    row = list((run.get("grad_norms") or [])[k]) if k is not None else []
    if len(row) < 2:
        return math.nan
    first, last = finite(row[0]), positive(row[-1])
    return first / last if first is not None and last is not None else math.nan


def grad_norm_by_depth(runs: Sequence[Run], at: str | int = "last", title: str | None = None) -> go.Figure:
    """Gradient norm against layer index, log scale, one line per run, at one probe step.

    He et al. 2016 §1 / Glorot & Bengio 2010: in a deep plain net the norm falls (or
    explodes) from the head back to the input; a residual net keeps it flat. Each run's
    first-layer / last-layer ratio (``first_last_ratio``) is in its legend entry, and the
    subtitle says how to read it (an annotation on the plot would sit on the lines).
    """
    fig = go.Figure()
    for run, (label, colour, symbol) in zip(runs, run_styles(runs)):
        j = probe_index(run, at, "grad_norms")
        row = list((run.get("grad_norms") or [])[j]) if j is not None else []
        names = list(run.get("layer_names") or [])
        idx = downsample_indices(len(row))
        ratio = first_last_ratio(run, at)
        fig.add_trace(go.Scatter(
            x=idx, y=[positive(row[i]) for i in idx], name=f"{label} · {_ratio_text(ratio)}",
            connectgaps=False, text=[names[i] if i < len(names) else f"layer {i}" for i in idx],
            hovertemplate="layer %{x} (%{text}): %{y:.3g}<extra>" + label + "</extra>",
            **line_style(colour, symbol or "circle")))
    where = f"the {at} probe step" if isinstance(at, str) else f"step {at}"
    subtitle = "<br><sup>first/last: ‖∂L/∂W‖ of layer 0 ÷ last layer (≪ 1: the gradient vanishes)</sup>"
    head = title or f"Gradient norm by depth (at {where})"
    style.base_layout(fig, head + (subtitle if runs and "<br>" not in head else ""),
                      "weight layer index (0 = input side)", "‖∂L/∂W‖ (log scale)")
    style.log_axis(fig)
    if not runs:
        empty_note(fig, "no runs yet")
    fig.update_layout(uirevision="grad_norm_by_depth")
    return fig


def _ratio_text(ratio: float) -> str:
    return f"first/last = {ratio:.3g}" if math.isfinite(ratio) else "first/last: not yet"


def _sweep_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[int, list[float | None]]]:
    """{kind: {depth: [final loss per seed, None where it diverged]}}."""
    out: dict[str, dict[int, list[float | None]]] = {}
    for row in rows:
        per_kind = out.setdefault(str(row.get("shortcut", "none")), {})
        per_kind.setdefault(int(row["depth"]), []).append(finite(row.get("train_loss")))
    return out


def depth_sweep(rows: Sequence[Mapping[str, Any]], log_y: bool = False, title: str | None = None) -> go.Figure:
    """Final training loss against depth, one line per shortcut kind, mean ± std over seeds.

    He et al. 2016, Fig. 6: plain nets' training error *rises* with depth (degradation)
    while ResNets' falls. ``rows``: dicts with ``depth``, ``shortcut``, ``seed``,
    ``train_loss``. Error bars are the population std over seeds (0 for one seed); a diverged
    (non-finite) loss is left out of the mean and counted in the hover text.
    """
    fig = go.Figure()
    stats = _sweep_stats(rows)
    order = sorted(stats, key=lambda k: (list(style.KIND_COLOURS).index(k) if k in style.KIND_COLOURS else 99, k))
    for kind in order:
        depths = sorted(stats[kind])
        means, stds, notes = [], [], []
        for d in depths:
            vals = [v for v in stats[kind][d] if v is not None]
            bad = len(stats[kind][d]) - len(vals)
            mean = sum(vals) / len(vals) if vals else None
            means.append(mean)
            stds.append(math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals)) if vals else None)
            notes.append(f"{len(vals)} seed(s)" + (f", {bad} diverged" if bad else ""))
            if not vals:
                fig.add_annotation(x=d, y=1.0, yref="paper", text="✕ diverged", showarrow=False,
                                   font=dict(color=style.colour_for(kind)), name=f"diverged {kind} {d}")
        colour = style.colour_for(kind)
        fig.add_trace(go.Scatter(
            x=depths, y=means, name=style.label_for(kind), mode="lines+markers", connectgaps=False,
            line=dict(color=colour), marker=dict(color=colour),
            error_y=dict(type="data", array=stds, visible=True, color=colour), text=notes,
            hovertemplate="depth %{x}: %{y:.3g} (%{text})<extra>" + style.label_for(kind) + "</extra>"))
    style.base_layout(fig, title or "Final training loss vs depth<br><sup>mean ± std over seeds; "
                      "plain nets degrade with depth (He et al. 2016, Fig. 6)</sup>",
                      "depth (weight layers)", "final training loss (cross-entropy, nats)"
                      + (" (log scale)" if log_y else ""))
    if log_y:
        style.log_axis(fig)
    if not rows:
        empty_note(fig, "no finished runs yet")
    return fig


def progress_summary(snapshot: Run) -> dict[str, Any]:
    """What the page's readout shows for one run: step/total, %, steps/s, device, status."""
    final = snapshot.get("final") or {}
    spec = snapshot.get("spec") or {}
    step = int(snapshot.get("step") or 0)
    total = int(snapshot.get("total_steps") or spec.get("steps") or 0)
    percent = min(100.0, 100.0 * step / total) if total > 0 else 0.0
    rate = finite(final.get("steps_per_s")) or 0.0
    device = str(final.get("device") or "?")
    status = str(snapshot.get("status") or "waiting")
    reason = final.get("stopped_reason")
    eta = (total - step) / rate if status == "running" and rate > 0 and total > step else None
    texts = {
        "running": f"step {step:,} / {total:,} ({percent:.0f}%) · {rate:,.0f} steps/s on {device}"
                   + (f" · about {_duration(eta)} left" if eta is not None else ""),
        "finished": f"finished {step:,} steps on {device} ({rate:,.0f} steps/s)",
        "diverged": f"diverged at step {step:,}: {reason or 'the loss became non-finite'}",
        "stopped": f"stopped at step {step:,} / {total:,}" + (f": {reason}" if reason else ""),
    }
    return {"label": run_label(snapshot) if spec else "", "step": step, "total": total,
            "percent": percent, "steps_per_s": rate, "device": device, "status": status,
            "done": status in ("finished", "stopped", "diverged"), "eta_s": eta,
            "text": texts.get(status, f"waiting to start ({total:,} steps)")}


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
