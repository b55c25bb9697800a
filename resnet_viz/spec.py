"""The experiment spec: one frozen, typed dataclass that holds every knob.

It is the cache key (``spec_hash``), the CLI's flags and the app's URL. Parsing never
raises on user input: bad or unknown values fall back to defaults and each fallback is
reported as a human-readable notice (TensorFlow Playground's ``state.ts`` pattern).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

# Name-keyed tables: the spec stores only strings and numbers.
MODELS = ("mlp", "cnn")
BLOCKS = ("basic", "bottleneck")
SHORTCUTS = ("none", "identity", "projection", "gated")
RESIDUAL_SHORTCUTS = ("identity", "projection", "gated")
NORMS = ("batch", "none")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "gelu")
INITS = ("he", "xavier", "zero_last_bn")
SYNTHETIC_2D = ("spirals", "circles", "xor", "moons", "gaussians")
IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
DATASETS = SYNTHETIC_2D + ("grid1d",) + IMAGE_DATASETS
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "step", "cosine")
DEVICES = ("auto", "cpu", "cuda")

# (min, max) for numeric knobs. Maxima are sanity bounds, not classroom limits
# (the teacher config narrows those).
RANGES: dict[str, tuple[float, float]] = {
    "depth": (1, 1000),
    "width": (2, 1024),
    "mlp_block_layers": (1, 2),
    "residual_scale": (0.0, 4.0),
    "gate_bias": (-10.0, 10.0),
    "n_samples": (16, 200_000),
    "noise": (0.0, 2.0),
    "val_fraction": (0.05, 0.5),
    "lr": (1e-6, 10.0),
    "momentum": (0.0, 0.999),
    "weight_decay": (0.0, 0.1),
    "warmup_steps": (0, 100_000),
    "batch_size": (1, 4096),
    "steps": (1, 1_000_000),
    "eval_every": (1, 100_000),
    "log_every": (1, 100_000),
    "seed": (0, 2**31 - 1),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "model": MODELS, "block": BLOCKS, "shortcut": SHORTCUTS, "norm": NORMS,
    "activation": ACTIVATIONS, "init": INITS, "dataset": DATASETS,
    "optimizer": OPTIMIZERS, "lr_schedule": SCHEDULES, "device": DEVICES,
}


class SpecError(ValueError):
    """A spec that cannot be built as asked; the message is meant for a person."""


@dataclass(frozen=True)
class ExperimentSpec:
    """Every knob of one training run. Frozen and hashable: it is the cache key."""

    # --- model ---
    model: str = "mlp"              # "mlp" (toy / 1-D / flattened images) or "cnn" (He et al. §4.2)
    depth: int = 20                 # cnn: 6n+2 (basic) or 9n+2 (bottleneck) weighted layers; mlp: hidden layers
    width: int = 32                 # mlp: units per hidden layer; cnn: filters of stage 1 (then x2, x4)
    block: str = "basic"            # cnn block: "basic" (two 3x3) or "bottleneck" (1x1-3x3-1x1)
    mlp_block_layers: int = 1       # hidden layers wrapped by one residual MLP block (1: Balduzzi et al.)
    shortcut: str = "identity"      # none (plain) | identity (option A) | projection (option B) | gated (Highway)
    shortcut_mask: str = ""         # one '1'/'0' per block; '0' removes that block's shortcut; "" = all on
    residual_scale: float = 1.0     # alpha in x + alpha*F(x) (Balduzzi et al.'s beta)
    gate_bias: float = -1.0         # Highway gate bias at init; negative = carry by default
    norm: str = "batch"
    activation: str = "relu"
    init: str = "he"                # he | xavier | zero_last_bn (last BN gamma of each branch = 0)
    # --- data ---
    dataset: str = "digits"
    n_samples: int = 2000           # synthetic sets: points; image sets: cap on examples used
    noise: float = 0.1
    val_fraction: float = 0.2
    # --- optimisation ---
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_schedule: str = "constant"   # constant | step (/10 at 50% and 75%, as He et al.) | cosine
    warmup_steps: int = 0
    batch_size: int = 128
    steps: int = 600
    eval_every: int = 100
    log_every: int = 10             # probes (gradient norms, responses) every this many steps
    seed: int = 0
    device: str = "auto"            # auto = CUDA when available, else CPU

    def __post_init__(self) -> None:
        problems = validate(self)
        if problems:
            raise SpecError("; ".join(problems))

    # --- derived ---
    @property
    def n_blocks(self) -> int:
        """Residual blocks in the net (the length the shortcut mask must have)."""
        return n_blocks(self.model, self.depth, self.block, self.mlp_block_layers)

    def block_has_shortcut(self, i: int) -> bool:
        if self.shortcut == "none":
            return False
        return not self.shortcut_mask or self.shortcut_mask[i] == "1"

    @property
    def is_residual(self) -> bool:
        return any(self.block_has_shortcut(i) for i in range(self.n_blocks))

    def replace(self, **changes: Any) -> "ExperimentSpec":
        return dataclasses.replace(self, **changes)

    def plain_twin(self) -> "ExperimentSpec":
        """Same net, same seed, no shortcuts: the fair comparison of He et al. Fig. 6."""
        return self.replace(shortcut="none", shortcut_mask="")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def spec_hash(self) -> str:
        """Stable across processes and Python versions (unlike ``hash()``)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_query_params(self) -> dict[str, str]:
        """Only non-default fields, so shared links stay short."""
        default = ExperimentSpec()
        return {f.name: _fmt(getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    @classmethod
    def from_query_params(cls, params: Mapping[str, Any],
                          base: "ExperimentSpec | None" = None) -> tuple["ExperimentSpec", list[str]]:
        return parse_spec(params, base)


def n_blocks(model: str, depth: int, block: str = "basic", mlp_block_layers: int = 1) -> int:
    if model == "cnn":
        per = 9 if block == "bottleneck" else 6
        return 3 * ((depth - 2) // per)
    return depth // mlp_block_layers


def valid_cnn_depths(block: str = "basic", max_depth: int = 1000) -> list[int]:
    per = 9 if block == "bottleneck" else 6
    return list(range(per + 2, max_depth + 1, per))


def validate(spec: ExperimentSpec) -> list[str]:
    """All problems with a spec, each a sentence a student can act on."""
    problems: list[str] = []
    for f in fields(spec):
        v = getattr(spec, f.name)
        if f.name in CHOICES and v not in CHOICES[f.name]:
            problems.append(f"{f.name} must be one of {', '.join(CHOICES[f.name])} (got {v!r})")
        if f.name in RANGES:
            lo, hi = RANGES[f.name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                problems.append(f"{f.name} must be a finite number (got {v!r})")
            elif f.type in ("int", int) and not float(v).is_integer():
                problems.append(f"{f.name} must be a whole number (got {v!r})")
            elif not lo <= v <= hi:
                problems.append(f"{f.name} must be between {_fmt(lo)} and {_fmt(hi)} (got {_fmt(v)})")
    if problems:
        return problems
    if spec.model == "cnn":
        per = 9 if spec.block == "bottleneck" else 6
        if spec.depth < per + 2 or (spec.depth - 2) % per:
            problems.append(f"a {spec.block} CNN needs depth = {per}n+2, e.g. "
                            f"{', '.join(map(str, valid_cnn_depths(spec.block)[:5]))} (got {spec.depth})")
        if spec.width > 256:
            problems.append(f"CNN width (stage-1 filters) must be at most 256 (got {spec.width})")
        if spec.dataset not in IMAGE_DATASETS:
            problems.append(f"the CNN needs an image dataset ({', '.join(IMAGE_DATASETS)}), not {spec.dataset}")
    elif spec.depth % spec.mlp_block_layers:
        problems.append(f"depth {spec.depth} is not a multiple of mlp_block_layers={spec.mlp_block_layers}")
    if spec.model == "mlp" and spec.block != "basic":
        problems.append("block='bottleneck' exists only for the CNN")
    mask = spec.shortcut_mask
    if mask and not problems:
        if set(mask) - {"0", "1"}:
            problems.append(f"shortcut_mask must contain only 0 and 1 (got {mask!r})")
        elif len(mask) != spec.n_blocks:
            problems.append(f"shortcut_mask needs one digit per block: {spec.n_blocks} (got {len(mask)})")
    return problems


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return repr(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    return str(v)


def _coerce(name: str, typ: Any, raw: Any) -> Any:
    if isinstance(raw, (list, tuple)):  # st.query_params may hand lists
        raw = raw[-1] if raw else ""
    text = str(raw).strip()
    if typ in ("int", int):
        val = float(text)
        if not val.is_integer():
            raise ValueError("not a whole number")
        return int(val)
    if typ in ("float", float):
        val = float(text)
        if not math.isfinite(val):
            raise ValueError("not finite")
        return val
    return text


def parse_spec(params: Mapping[str, Any],
               base: ExperimentSpec | None = None) -> tuple[ExperimentSpec, list[str]]:
    """Build a spec from untrusted strings (URL, form, CLI). Never raises.

    Unknown keys are ignored silently (links from newer versions still open); a value
    that does not parse or is out of range is replaced by the default and reported.
    If the combination is still impossible (e.g. CNN depth 21) the offending fields are
    reset one by one, the model-shaping ones first.
    """
    base = base or ExperimentSpec()
    notices: list[str] = []
    values = base.to_dict()
    known = {f.name: f for f in fields(ExperimentSpec)}
    for key, raw in params.items():
        if key not in known:
            continue
        f = known[key]
        try:
            val = _coerce(key, f.type, raw)
        except (ValueError, OverflowError):
            notices.append(f"{key}={str(raw)[:40]!r} is not a valid {f.type}; "
                           f"using the default {_fmt(getattr(base, key))}")
            continue
        trial = dict(values, **{key: val})
        single = [p for p in _field_problems(key, val)]
        if single:
            notices.append(f"{single[0]}; using the default {_fmt(getattr(base, key))}")
            continue
        values = trial
    # Cross-field checks: reset fields (most specific first) until the spec is valid.
    for key in ("shortcut_mask", "mlp_block_layers", "depth", "block", "width", "dataset", "model"):
        try:
            return ExperimentSpec(**values), notices
        except SpecError as err:
            if not _mentions(err, key):
                continue
            notices.append(f"{err}; resetting {key} to {_fmt(getattr(base, key))}")
            values[key] = getattr(base, key)
    try:
        return ExperimentSpec(**values), notices
    except SpecError as err:
        notices.append(f"{err}; using the default experiment")
        return base, notices


_MENTIONS = {
    "shortcut_mask": ("shortcut_mask",),
    "block": ("exists only for the CNN",),
    "mlp_block_layers": ("mlp_block_layers",),
    "depth": ("depth",),
    "width": ("width",),
    "dataset": ("dataset", "the CNN needs"),
    "model": ("CNN",),
}


def _mentions(err: Exception, key: str) -> bool:
    return any(word in str(err) for word in _MENTIONS[key])


def _field_problems(name: str, val: Any) -> list[str]:
    if name in CHOICES and val not in CHOICES[name]:
        return [f"{name} must be one of {', '.join(CHOICES[name])} (got {str(val)[:40]!r})"]
    if name in RANGES:
        lo, hi = RANGES[name]
        if not lo <= val <= hi:
            return [f"{name} must be between {_fmt(lo)} and {_fmt(hi)} (got {_fmt(val)})"]
    if name == "shortcut_mask" and set(str(val)) - {"0", "1"}:
        return [f"shortcut_mask must contain only 0 and 1 (got {str(val)[:40]!r})"]
    return []


def spec_from_json(text: str) -> tuple[ExperimentSpec, list[str]]:
    """Parse a spec saved as JSON (run store, exported results)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return ExperimentSpec(), [f"spec is not valid JSON ({err.msg}); using the default"]
    if not isinstance(data, dict):
        return ExperimentSpec(), ["spec JSON is not an object; using the default"]
    return parse_spec({k: v for k, v in data.items() if v is not None})


# Input shape and number of classes of each dataset, known without loading it (the
# architecture page draws a net before any data is read).
DATASET_SHAPES: dict[str, tuple[tuple[int, ...], int]] = {
    **{name: ((2,), 2) for name in SYNTHETIC_2D},
    "grid1d": ((1,), 2),
    "digits": ((1, 8, 8), 10),
    "mnist": ((1, 28, 28), 10),
    "fashion_mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
}
