"""Load trained weights into the matching net: our own saves, and the widely used
CIFAR-ResNet layout (``conv1``, ``bn1``, ``layer1..3.N.{conv1,bn1,conv2,bn2}``, ``linear``
or ``fc``; He et al. 2016 §4.2 nets with option A shortcuts, whose zero-padding splits the
new channels evenly over both sides, as ``blocks.PadShortcut`` does).

A checkpoint is untrusted input: it is size-capped and read with
``torch.load(weights_only=True)``, so it can never run code. It may carry DataParallel's
``module.`` prefix and may sit inside a dict under ``state_dict`` (or ``model``). A mismatch
names the first key or shape that does not fit, in words a student can act on.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

MAX_CHECKPOINT_BYTES = 512 * 2**20     # ResNet-152 in fp32 is 241 MB
_CIFAR_BLOCK = re.compile(r"^layer(\d+)\.(\d+)\.(conv1|bn1|conv2|bn2|shortcut\.0|shortcut\.1)\.(.+)$")
_CIFAR_PARTS = {"conv1": "branch.conv1", "bn1": "branch.norm1", "conv2": "branch.conv2",
                "bn2": "branch.norm2", "shortcut.0": "shortcut.0", "shortcut.1": "shortcut.1"}
_CIFAR_TOP = {"conv1": "stem.conv", "bn1": "stem.norm", "linear": "head.fc", "fc": "head.fc"}


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into this net; the message says why."""


def read_state_dict(source: bytes | str | Path, max_bytes: int = MAX_CHECKPOINT_BYTES) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file or blob (``weights_only=True``), unwrapped."""
    blob = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    if len(blob) > max_bytes:
        raise CheckpointError(f"the checkpoint is {len(blob) / 2**20:.0f} MB, more than the "
                              f"{max_bytes // 2**20} MB allowed")
    try:
        obj = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as err:                 # corrupt file, pickle of code objects, not torch at all
        raise CheckpointError(f"this is not a weights-only PyTorch checkpoint ({_short(err)})") from None
    return unwrap(obj)


def unwrap(obj: Any) -> dict[str, torch.Tensor]:
    """A flat name -> tensor dict: under ``state_dict``/``model`` if nested, without ``module.``."""
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError("the checkpoint holds no state_dict (a mapping of names to tensors)")
    out = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"entry {str(k)[:80]!r} of the checkpoint is not a tensor")
        out[str(k).removeprefix("module.")] = v
    return out


def is_cifar_layout(state: Mapping[str, torch.Tensor]) -> bool:
    return "conv1.weight" in state and any(k.startswith("layer1.0.") for k in state)


def from_cifar_layout(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename CIFAR-ResNet keys to ours: ``layerS.B`` is our block (blocks in stages 1..S-1) + B."""
    per_stage: dict[int, int] = {}
    for k in state:
        if m := _CIFAR_BLOCK.match(k):
            s, b = int(m.group(1)), int(m.group(2))
            per_stage[s] = max(per_stage.get(s, 0), b + 1)
    first = {s: sum(n for t, n in per_stage.items() if t < s) for s in per_stage}
    out = {}
    for k, v in state.items():
        if m := _CIFAR_BLOCK.match(k):
            s, b, part, rest = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
            out[f"blocks.{first[s] + b}.{_CIFAR_PARTS[part]}.{rest}"] = v
        else:
            head, _, rest = k.partition(".")
            out[f"{_CIFAR_TOP.get(head, head)}.{rest}"] = v
    return out


def load_weights(model: nn.Module, source: bytes | str | Path | Mapping[str, torch.Tensor]) -> str:
    """Load ``source`` into ``model`` (strict: every key and shape must fit); returns the layout
    found, "ours" or "cifar-resnet"."""
    state = unwrap(source) if isinstance(source, Mapping) else read_state_dict(source)
    layout = "cifar-resnet" if is_cifar_layout(state) else "ours"
    if layout == "cifar-resnet":
        state = from_cifar_layout(state)
    check_fits(model.state_dict(), state)
    model.load_state_dict(state, strict=True)
    return layout


def check_fits(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> None:
    """Raise ``CheckpointError`` naming the first key or shape that does not fit."""
    for key, want in expected.items():
        if key not in given:
            raise CheckpointError(f"the checkpoint has no {key!r} (shape {tuple(want.shape)}), which this "
                                  "net needs: is it the same architecture (model, depth, width, shortcut)?")
        if tuple(given[key].shape) != tuple(want.shape):
            raise CheckpointError(f"{key!r} has shape {tuple(given[key].shape)} in the checkpoint but "
                                  f"{tuple(want.shape)} in this net: check depth, width and the dataset")
    extra = [k for k in given if k not in expected]
    if extra:
        raise CheckpointError(f"the checkpoint has {extra[0]!r}, which this net does not have "
                              f"({len(extra)} such key(s)): a shortcut or block setting differs")


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def store_checkpoint(source: bytes | str | Path, folder: Path) -> str:
    """Keep a checked copy of a checkpoint in ``folder`` under its content id (the first 16
    hex digits of its SHA-256): what ``ExperimentSpec.init_from`` names, so a spec (and its
    cache key and URL) says which weights a run starts from, and never carries a path."""
    blob = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    read_state_dict(blob)                                   # refuse anything that is not weights
    cid = hashlib.sha256(blob).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{cid}.pt"
    if not target.exists():
        part = target.with_name(target.name + ".part")
        part.write_bytes(blob)
        os.replace(part, target)
    return cid


def checkpoint_file(cid: str, folder: Path) -> Path:
    """The stored checkpoint ``cid``; a ``CheckpointError`` if it is not there."""
    path = folder / f"{cid}.pt"
    if not re.fullmatch(r"[0-9a-f]{16}", cid) or not path.is_file():
        raise CheckpointError(f"checkpoint {cid[:32]!r} is not in {folder}: upload it again, or "
                              "start from the usual initialisation")
    return path
