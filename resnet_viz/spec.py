"""The experiment spec: one frozen, typed dataclass that holds every knob.

It is the cache key (``spec_hash``), the CLI's flags and the app's URL, so it stays a plain
stdlib dataclass; its checks are pydantic types built from the tables below
(``resnet_viz.validation``). Parsing never raises on user input: bad or unknown values fall
back to defaults, each reported as a notice that carries its structured ``Problem``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields
from typing import Annotated, Any, Callable, Mapping, Sequence

from resnet_viz.validation import (Notice, Problem, between, check, from_text, one_of, optional_model, plain,
                                   problems_in, read, typed)

from resnet_viz.choices import (ACTIVATIONS, AUGMENTS, BLOCKS, CHOICES, DATASET_SHAPES, DATASETS,  # noqa: F401
                                DEVICES, IMAGE_DATASETS, INITS, MODELS, NORMS, OPTIMIZERS, RANGES,
                                RESIDUAL_SHORTCUTS, SCHEDULES, SHORTCUTS, SYNTHETIC_2D)


class SpecError(ValueError):
    """A spec that cannot be built as asked: the message for people, ``problems`` for code."""

    def __init__(self, problems: str | Sequence[Problem]) -> None:
        self.problems = [Problem("", problems)] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(p.message for p in self.problems))


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
    augment: str = "none"           # none | he (§4.2: pad 4, random crop, flip; image sets only)
    folder_id: str = ""             # dataset "folder": id of your images in the data folder (data.image_folder)
    image_size: int = 32            # dataset "folder": images are square, this many pixels a side
    folder_classes: int = 2         # dataset "folder": how many class sub-folders it has
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
    init_from: str = ""             # id of a checkpoint in the data folder (nets.checkpoints); "" = He init

    def __post_init__(self) -> None:
        problems = spec_problems(vars(self))
        if problems:
            raise SpecError(problems)

    # --- derived ---
    def data_shape(self) -> tuple[tuple[int, ...], int]:
        """(input shape, number of classes) of the dataset, without loading it."""
        if self.dataset == "folder":
            return (3, self.image_size, self.image_size), self.folder_classes
        return DATASET_SHAPES[self.dataset]

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
        # what dataclasses.asdict gives (every field is a scalar), without its deep copy
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def spec_hash(self) -> str:
        """Stable across processes and Python versions (unlike ``hash()``), and across
        versions of the lab: a field added later counts only when it is not at its default,
        so every run stored before it keeps its key."""
        values = {k: v for k, v in self.to_dict().items()
                  if not (k in ADDED_LATER and v == ADDED_LATER[k])}
        blob = json.dumps(values, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_query_params(self) -> dict[str, str]:
        """Only non-default fields, so shared links stay short."""
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) != getattr(_DEFAULT, f.name)}

    @classmethod
    def from_query_params(cls, params: Mapping[str, Any],
                          base: "ExperimentSpec | None" = None) -> tuple["ExperimentSpec", list[Notice]]:
        return parse_spec(params, base)


def n_blocks(model: str, depth: int, block: str = "basic", mlp_block_layers: int = 1) -> int:
    if model == "cnn":
        per = 9 if block == "bottleneck" else 6
        return 3 * ((depth - 2) // per)
    return depth // mlp_block_layers


def valid_cnn_depths(block: str = "basic", max_depth: int = 1000) -> list[int]:
    per = 9 if block == "bottleneck" else 6
    return list(range(per + 2, max_depth + 1, per))


# --- validation: each field alone (pydantic, see resnet_viz.validation), then together ---

_KINDS = {"int": int, "float": float, "str": str}
# field -> default: left out of spec_hash at that default, so runs stored before keep their key
ADDED_LATER = {"augment": "none", "init_from": "", "folder_id": "", "image_size": 32, "folder_classes": 2}


def _content_id(value: Any) -> bool:
    return isinstance(value, str) and (value == "" or (len(value) == 16 and not set(value) - set("0123456789abcdef")))
_RESET_ORDER = ("shortcut_mask", "augment", "mlp_block_layers", "depth", "block", "width", "dataset", "model")


def _binary(mask: Any) -> bool:
    return isinstance(mask, str) and not set(mask) - {"0", "1"}


def _field_types(reader: Callable[[str, type], Any]) -> dict[str, Any]:
    """Every spec field as a pydantic type: ``reader`` for its kind, then the tables' checks.
    Built from ``fields()`` and the tables, so a new knob needs no second declaration."""
    types = {}
    for f in fields(ExperimentSpec):
        kind = _KINDS[f.type]     # "int": the annotations are strings (from __future__)
        checks = ([between(f.name, *RANGES[f.name])] if f.name in RANGES else
                  [one_of(f.name, CHOICES[f.name])] if f.name in CHOICES else
                  [check(f.name, _binary, "contain only 0 and 1")] if f.name == "shortcut_mask" else
                  [check(f.name, _content_id, "be an id of 16 hex digits")] if f.name in ("init_from", "folder_id")
                  else [])
        types[f.name] = Annotated[(kind, reader(f.name, kind), *checks)]
    return types


_FROM_TEXT = optional_model("SpecFromText", _field_types(from_text))   # URL, form, CLI strings
_TYPED = optional_model("SpecValues", _field_types(typed))              # ExperimentSpec(...) in code


def spec_problems(values: Mapping[str, Any]) -> list[Problem]:
    """All problems with a full set of spec values, each a sentence a student can act on:
    the fields one by one, then (once each is fine alone) how they combine."""
    return problems_in(_TYPED, values) or conflicts(values)


def conflicts(v: Mapping[str, Any]) -> list[Problem]:
    """Clashes of values that are each valid alone. Each problem blames the field that
    ``parse_spec`` resets first and relates the others whose reset could also fix it."""
    found: list[Problem] = []

    def clash(field: str, message: str, *related: str) -> None:
        found.append(Problem(field, message, related=related, cross_field=True))

    depth, block, layers, mask = v["depth"], v["block"], v["mlp_block_layers"], v["shortcut_mask"]
    if v["model"] == "cnn":
        per = 9 if block == "bottleneck" else 6
        if depth < per + 2 or (depth - 2) % per:
            examples = ", ".join(map(str, valid_cnn_depths(block)[:5]))
            clash("depth", f"a {block} CNN needs depth = {per}n+2, e.g. {examples} (got {depth})", "model")
        if v["width"] > 256:
            clash("width", f"CNN width (stage-1 filters) must be at most 256 (got {v['width']})", "model")
        if v["dataset"] not in IMAGE_DATASETS:
            clash("dataset", f"the CNN needs an image dataset ({', '.join(IMAGE_DATASETS)}), not {v['dataset']}",
                  "model")
    elif depth % layers:
        clash("mlp_block_layers", f"depth {depth} is not a multiple of mlp_block_layers={layers}", "depth")
    if v["dataset"] == "folder" and not v["folder_id"]:
        clash("dataset", "dataset=folder needs folder_id: upload or read a folder of images first", "folder_id")
    if v["augment"] != "none" and v["dataset"] not in IMAGE_DATASETS:
        clash("augment", f"augmentation crops and flips images; {v['dataset']} is not an image set", "dataset")
    if v["model"] == "mlp" and block != "basic":
        clash("block", "block='bottleneck' exists only for the CNN", "model")
    if mask and not found and len(mask) != (blocks := n_blocks(v["model"], depth, block, layers)):
        clash("shortcut_mask", f"shortcut_mask needs one digit per block: {blocks} (got {len(mask)})")
    return found


def parse_spec(params: Mapping[str, Any],
               base: ExperimentSpec | None = None) -> tuple[ExperimentSpec, list[Notice]]:
    """Build a spec from untrusted strings (URL, form, CLI). Never raises.

    The notices are sentences for people (``str``), each carrying its :class:`Problem`
    (``.field``, ``.message``, ``.cross_field``): act on those, not on the words.
    """
    spec, found = parse_spec_problems(params, base)
    return spec, [_notice(p) for p in found]


def parse_spec_problems(params: Mapping[str, Any],
                        base: ExperimentSpec | None = None) -> tuple[ExperimentSpec, list[Problem]]:
    """``parse_spec`` with the structured problems. Unknown keys are ignored (links from newer
    versions still open); a value that does not parse or is out of range falls back to
    ``base``'s; then clashing fields (CNN depth 21) are reset, the most specific first."""
    base = base or _DEFAULT
    fallbacks = base.to_dict()
    given = {k: _last(v) for k, v in params.items() if k in fallbacks}
    parsed, found = read(_FROM_TEXT, given, fallbacks)
    values = {**fallbacks, **parsed}
    for key in _RESET_ORDER:
        clashes = conflicts(values)
        if not clashes:
            break
        blamed = [c for c in clashes if c.involves(key)]
        if blamed:
            found.append(Problem(key, "; ".join(c.message for c in blamed), fallbacks[key],
                                 tuple(r for c in blamed for r in c.related), cross_field=True))
            values[key] = fallbacks[key]
    try:
        return ExperimentSpec(**values), found
    except SpecError as err:
        return base, found + [Problem("", str(err), base, cross_field=True)]


def _last(raw: Any) -> Any:
    """st.query_params may hand a list for a repeated key: the last one wins."""
    return (raw[-1] if raw else "") if isinstance(raw, (list, tuple)) else raw


def _notice(p: Problem) -> Notice:
    """A problem as a sentence that also says what was used instead."""
    done = ("using the default experiment" if not p.field else
            f"resetting {p.field} to {plain(p.fallback)}" if p.cross_field else
            f"using the default {plain(p.fallback) or '(none)'}")
    return Notice(p, f"{p.message}; {done}")


def spec_from_json(text: str) -> tuple[ExperimentSpec, list[Notice]]:
    """Parse a spec saved as JSON (run store, exported results)."""
    try:
        data = json.loads(text)
        problem = "" if isinstance(data, dict) else "spec JSON is not an object"
    except json.JSONDecodeError as err:
        problem = f"spec is not valid JSON ({err.msg})"
    if problem:
        return _DEFAULT, [Notice(Problem("", problem, _DEFAULT), f"{problem}; using the default")]
    return parse_spec({k: v for k, v in data.items() if v is not None})


_DEFAULT = ExperimentSpec()
