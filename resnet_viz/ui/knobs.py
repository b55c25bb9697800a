"""The knobs of the sidebar, without the widgets: which values to offer, and how a set of
knob values becomes a valid spec inside the teacher's limits.

The app's ``spec_ui`` draws one widget per entry of :data:`KNOBS`; everything that needs
thinking (a CNN offers only 6n+2 depths, switching to the CNN picks an image dataset,
a new depth resets the per-block shortcut mask, out-of-limit values are clamped with a
message) lives here, so it is unit-tested without a browser.
"""
from __future__ import annotations

import dataclasses
from dataclasses import fields
from typing import Any, Mapping, Sequence

from resnet_viz.serve.config import ClassroomConfig, check_spec_limits
from resnet_viz.spec import (ACTIVATIONS, AUGMENTS, DATASETS, IMAGE_DATASETS, INITS, MODELS, NORMS, OPTIMIZERS,
                   RESIDUAL_SHORTCUTS, ExperimentSpec, SpecError, parse_spec, valid_cnn_depths)

MLP_DEPTHS = (1, 2, 3, 4, 6, 8, 12, 16, 20, 24, 32, 40, 50, 56, 64, 80, 100, 110)
MLP_WIDTHS = (8, 16, 32, 64, 128, 200, 256)
CNN_WIDTHS = (4, 8, 16, 32, 64)
LRS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
BATCHES = (16, 32, 64, 128, 256)
STEPS = (50, 100, 200, 300, 600, 1000, 2000, 5000)
SCALES = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)

# (field, label, kind) in sidebar order; kind is "select" (a short list) or "slider" (a
# select_slider over an ordered list). ``options(field, spec, cfg)`` gives the values.
KNOBS: tuple[tuple[str, str, str], ...] = (
    ("model", "Model family", "select"),
    ("dataset", "Dataset", "select"),
    ("augment", "Augmentation (image sets)", "select"),
    ("depth", "Depth (weight layers)", "slider"),
    ("width", "Width (units / stage-1 filters)", "slider"),
    ("shortcut", "Shortcut of the residual net", "select"),
    ("residual_scale", "Residual scale α in x + α·F(x)", "slider"),
    ("norm", "Normalisation", "select"),
    ("activation", "Activation", "select"),
    ("init", "Initialisation", "select"),
    ("optimizer", "Optimizer", "select"),
    ("lr", "Learning rate", "slider"),
    ("batch_size", "Batch size", "slider"),
    ("steps", "Training steps", "slider"),
    ("seed", "Seed", "number"),
)
LABELS = {"mlp": "MLP (fully connected)", "cnn": "CNN (He et al. §4.2)", "identity": "identity (option A)",
          "projection": "projection (option B)", "gated": "gated (Highway)", "batch": "BatchNorm",
          "none": "none", "he": "He (Kaiming)", "xavier": "Xavier", "zero_last_bn": "He, last BN γ = 0",
          "sgd": "SGD + momentum", "adam": "Adam", "relu": "ReLU", "leaky_relu": "Leaky ReLU",
          "tanh": "tanh", "gelu": "GELU", "folder": "your own images (zip)"}
# Where one short name means different things in different knobs ("he": an init, a crop).
KNOB_LABELS = {"augment": {"none": "none", "he": "pad 4, random crop, flip (He et al. §4.2)"}}
# Knobs shown only for some specs (the others leave them at their default: see ``snap``).
SHOWN_FOR = {"augment": lambda spec: spec.dataset in IMAGE_DATASETS}
FOLDER_DEFAULTS = {k: getattr(ExperimentSpec(), k) for k in ("folder_id", "image_size", "folder_classes")}


def label(value: Any, knob: str = "") -> str:
    """How a knob value is shown (the spec keeps the short name)."""
    if value in KNOB_LABELS.get(knob, {}):
        return KNOB_LABELS[knob][value]
    return LABELS.get(value, str(value)) if isinstance(value, str) else f"{value:g}"


def shown(knob: str, spec: ExperimentSpec) -> bool:
    """Whether the sidebar offers ``knob`` for ``spec`` (augmentation: image sets only)."""
    return SHOWN_FOR.get(knob, lambda _: True)(spec)


def with_value(values: Sequence[Any], value: Any, limit: float | None = None) -> list[Any]:
    """``values`` (cut at ``limit``) plus ``value`` itself, sorted: a value from a shared link
    that is not on the usual list still shows as selected."""
    out = {v for v in values if limit is None or v <= limit}
    out.add(value)
    return sorted(out)


def depth_options(spec: ExperimentSpec, cfg: ClassroomConfig) -> list[int]:
    """Depths to offer: 6n+2 (or 9n+2 bottleneck) for the CNN, a ladder for the MLP."""
    if spec.model == "cnn":
        return with_value(valid_cnn_depths(spec.block, cfg.max_depth), spec.depth)
    ladder = [d for d in MLP_DEPTHS if d % spec.mlp_block_layers == 0]
    return with_value(ladder, spec.depth, cfg.max_depth)


def options(name: str, spec: ExperimentSpec, cfg: ClassroomConfig) -> list[Any]:
    """The values the knob ``name`` offers for the current spec and classroom limits."""
    table: dict[str, Any] = {
        "model": list(MODELS),
        "dataset": list(IMAGE_DATASETS) if spec.model == "cnn" else list(DATASETS),
        "shortcut": list(RESIDUAL_SHORTCUTS),
        "norm": list(NORMS), "activation": list(ACTIVATIONS), "init": list(INITS),
        "optimizer": list(OPTIMIZERS), "augment": list(AUGMENTS),
    }
    if name in table:
        return table[name]
    if name == "depth":
        return depth_options(spec, cfg)
    if name == "width":
        base = CNN_WIDTHS if spec.model == "cnn" else MLP_WIDTHS
        return with_value(base, spec.width, cfg.max_width(spec.model))
    ladders = {"residual_scale": SCALES, "lr": LRS, "batch_size": BATCHES}
    if name in ladders:
        return with_value(ladders[name], getattr(spec, name))
    if name == "steps":
        return with_value(STEPS, spec.steps, cfg.max_steps)
    raise KeyError(f"no options for knob {name!r}")


def nearest(values: Sequence[int], target: int) -> int:
    return min(values, key=lambda v: (abs(v - target), v))


def snap(values: Mapping[str, Any], cfg: ClassroomConfig) -> dict[str, Any]:
    """Make knob values consistent before building a spec: what a student means when
    they switch the model family or the depth, not a reset to the defaults."""
    v = dict(values)
    if v.get("model") == "cnn":
        v["block"] = v.get("block", "basic")
        if v.get("dataset") not in IMAGE_DATASETS:
            v["dataset"] = "digits"                      # the CNN needs images
        per = 9 if v["block"] == "bottleneck" else 6
        depth = int(v.get("depth", 20))
        if depth < per + 2 or (depth - 2) % per:
            v["depth"] = nearest(valid_cnn_depths(v["block"], max(per + 2, cfg.max_depth)), depth)
        v["width"] = min(int(v.get("width", 16)), cfg.max_width_cnn, 256)
    else:
        v["block"] = "basic"
        layers = int(v.get("mlp_block_layers", 1))
        depth = int(v.get("depth", 20))
        if depth % layers:
            v["depth"] = max(layers, depth - depth % layers)
    if v.get("dataset") not in IMAGE_DATASETS:
        v["augment"] = "none"                            # crops and flips are for images
    if v.get("dataset") != "folder":
        v.update(FOLDER_DEFAULTS)                        # your images' id is only the folder's
    mask = str(v.get("shortcut_mask") or "")
    if mask:
        try:
            n = ExperimentSpec(**{**v, "shortcut_mask": ""}).n_blocks
        except (SpecError, TypeError):
            n = -1
        if len(mask) != n:
            v["shortcut_mask"] = ""                       # a new depth: every shortcut on
    return v


def build(values: Mapping[str, Any], cfg: ClassroomConfig,
          base: ExperimentSpec | None = None) -> tuple[ExperimentSpec, list[str]]:
    """Knob values -> a valid spec within the limits, plus a sentence per change made."""
    base = base or ExperimentSpec()
    known = {f.name for f in fields(ExperimentSpec)}
    merged = {**base.to_dict(), **{k: v for k, v in values.items() if k in known}}
    try:
        spec, notes = ExperimentSpec(**snap(merged, cfg)), []
    except (SpecError, TypeError, ValueError):
        spec, notes = parse_spec({k: str(v) for k, v in merged.items()}, base)
    clamped, more = clamp_to_limits(spec, cfg)
    return clamped, notes + more


def clamp_to_limits(spec: ExperimentSpec, cfg: ClassroomConfig) -> tuple[ExperimentSpec, list[str]]:
    """``spec`` brought inside the classroom's limits (config.check_spec_limits), with a
    message per clamped knob. A CNN's depth is clamped to the deepest valid 6n+2."""
    problems = check_spec_limits(spec, cfg)
    if not problems:
        return spec, []
    changes: dict[str, Any] = {}
    if spec.depth > cfg.max_depth:
        if spec.model == "cnn":
            valid = valid_cnn_depths(spec.block, cfg.max_depth)
            changes["depth"] = valid[-1] if valid else spec.depth
        else:
            changes["depth"] = max(spec.mlp_block_layers,
                                   cfg.max_depth - cfg.max_depth % spec.mlp_block_layers)
    if spec.width > cfg.max_width(spec.model):
        changes["width"] = cfg.max_width(spec.model)
    if spec.steps > cfg.max_steps:
        changes["steps"] = cfg.max_steps
    if "depth" in changes and spec.shortcut_mask:
        changes["shortcut_mask"] = ""
    try:
        clamped = dataclasses.replace(spec, **changes)
    except SpecError:
        return spec, problems  # cannot happen with valid limits; keep the spec, say why
    notes = [f"{p}; using {changes[k]}" for p, k in zip(problems, _limit_keys(spec, cfg))]
    return clamped, notes


def _limit_keys(spec: ExperimentSpec, cfg: ClassroomConfig) -> list[str]:
    """The knob behind each message of check_spec_limits, in its order."""
    keys = []
    if spec.depth > cfg.max_depth:
        keys.append("depth")
    if spec.width > cfg.max_width(spec.model):
        keys.append("width")
    if spec.steps > cfg.max_steps:
        keys.append("steps")
    return keys


def mask_from_on(spec: ExperimentSpec, on: Sequence[int]) -> str:
    """The shortcut mask with exactly the blocks ``on`` keeping their shortcut ("" = all)."""
    keep = set(on)
    mask = "".join("1" if i in keep else "0" for i in range(spec.n_blocks))
    return "" if "0" not in mask else mask


def blocks_on(spec: ExperimentSpec) -> list[int]:
    """Blocks whose shortcut is on (the residual net's view of the mask)."""
    return [i for i in range(spec.n_blocks) if not spec.shortcut_mask or spec.shortcut_mask[i] == "1"]
