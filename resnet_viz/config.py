"""Teacher configuration: classroom limits, visible presets, classroom mode, bind address.

Read from a TOML file (``docs/classroom-config.example.toml`` lists every key). Like the
spec parser, loading never raises on a teacher's typo: a bad value falls back to its
default and an unknown key is ignored, each with a notice the app shows to the teacher.
"""
from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .spec import RANGES, ExperimentSpec

ENV_VAR = "RESNET_VIZ_CONFIG"
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def cpu_cores() -> int:
    """Cores this process may use (the affinity mask, which containers narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ClassroomConfig:
    """Limits and switches a teacher sets for a class. Defaults suit a 2-core server."""

    max_depth: int = 110                 # deepest net a student may train (He et al.'s CIFAR-110)
    max_width_mlp: int = 256             # units per hidden layer of the MLP
    max_width_cnn: int = 64              # stage-1 filters of the CNN (stages 2, 3 use 2x, 4x)
    max_steps: int = 5000                # training steps per run
    max_concurrent_jobs: int = field(default_factory=cpu_cores)  # runs training at once, server-wide
    max_jobs_per_session: int = 4        # runs one browser tab may have training or waiting
    worker_processes: bool = True        # train in separate processes (False: threads of the server)
    max_upload_bytes: int = 2 * 1024 * 1024  # largest image a student may upload (2 MiB)
    data_dir: str = "./data"             # run store and datasets; relative to where the app starts
    presets_visible: tuple[str, ...] | str = "all"  # lesson names students see, or "all"
    classroom_mode: bool = False         # True: students cannot edit knobs, only run lessons
    locked_lesson: str | None = None     # with classroom_mode: the one lesson students see
    bind_address: str = "127.0.0.1"      # "0.0.0.0" to let other machines of the class connect

    def max_width(self, model: str) -> int:
        """The width limit for ``model`` ("mlp" or "cnn")."""
        return self.max_width_cnn if model == "cnn" else self.max_width_mlp

    def preset_visible(self, lesson: str) -> bool:
        """Whether students may see the lesson ``lesson``."""
        if self.classroom_mode and self.locked_lesson is not None:
            return lesson == self.locked_lesson
        return self.presets_visible == "all" or lesson in self.presets_visible


# (min, max) accepted for each integer limit; outside them the default is kept.
_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "max_depth": (1, int(RANGES["depth"][1])),
    "max_width_mlp": (2, int(RANGES["width"][1])),
    "max_width_cnn": (2, 256),
    "max_steps": (1, int(RANGES["steps"][1])),
    "max_concurrent_jobs": (1, 256),
    "max_jobs_per_session": (1, 100),
    "max_upload_bytes": (1024, 100 * 1024 * 1024),
}


def load_config(path: str | Path | None = None) -> tuple[ClassroomConfig, list[str]]:
    """Read the teacher's TOML file; never raises.

    ``path`` defaults to the ``RESNET_VIZ_CONFIG`` environment variable. With neither, the
    defaults are used silently. A named file that is missing or unreadable gives the
    defaults plus a notice (a teacher who named a file wants to hear about a typo).
    """
    path = path if path is not None else os.environ.get(ENV_VAR) or None
    if path is None:
        return ClassroomConfig(), []
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ClassroomConfig(), [f"config file {path} not found; using the default settings"]
    except (OSError, UnicodeDecodeError) as err:
        return ClassroomConfig(), [f"config file {path} cannot be read ({err}); using the defaults"]
    except tomllib.TOMLDecodeError as err:
        return ClassroomConfig(), [f"config file {path} is not valid TOML ({err}); using the defaults"]
    return parse_config(raw)


def parse_config(raw: dict[str, Any]) -> tuple[ClassroomConfig, list[str]]:
    """Build a config from a parsed TOML table, one notice per ignored key or value."""
    default = ClassroomConfig()
    known = [f.name for f in fields(ClassroomConfig)]
    notices: list[str] = []
    values: dict[str, Any] = {}
    for key, val in raw.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            notices.append(f"unknown config key {key!r} ignored{hint}")
            continue
        try:
            values[key] = _check(key, val)
        except ValueError as err:
            notices.append(f"{key}: {err}; using the default {getattr(default, key)!r}")
    cfg = replace(default, **values)
    if cfg.locked_lesson is not None and not cfg.classroom_mode:
        notices.append("locked_lesson has an effect only with classroom_mode = true")
    return cfg, notices


def _check(key: str, val: Any) -> Any:
    """The value to use for ``key``, or ValueError with a sentence for the teacher."""
    if key in _INT_BOUNDS:
        lo, hi = _INT_BOUNDS[key]
        if isinstance(val, bool) or not isinstance(val, int):
            raise ValueError(f"{val!r} is not a whole number")
        if not lo <= val <= hi:
            raise ValueError(f"{val} is outside {lo}..{hi}")
        return val
    if key in ("classroom_mode", "worker_processes"):
        if not isinstance(val, bool):
            raise ValueError(f"{val!r} is not true or false")
        return val
    if key == "data_dir":
        if not isinstance(val, str) or not val.strip() or "\0" in val:
            raise ValueError(f"{val!r} is not a folder path")
        return val
    if key == "presets_visible":
        return _check_presets(val)
    if key == "locked_lesson":
        if not isinstance(val, str) or not _NAME_RE.fullmatch(val):
            raise ValueError(f"{val!r} is not a lesson name")
        return val
    if key == "bind_address":
        return _check_address(val)
    raise ValueError("no check for this key")  # pragma: no cover - every field is listed


def _check_presets(val: Any) -> tuple[str, ...] | str:
    if val == "all":
        return "all"
    if not isinstance(val, list) or not all(isinstance(v, str) and _NAME_RE.fullmatch(v) for v in val):
        raise ValueError('expected "all" or a list of lesson names')
    return tuple(val)


def _check_address(val: Any) -> str:
    if val == "localhost":
        return val
    try:
        if not isinstance(val, str):  # ip_address() would accept 5 as 0.0.0.5
            raise ValueError
        return str(ipaddress.ip_address(val))
    except ValueError:
        raise ValueError(f"{val!r} is not an IP address (e.g. 127.0.0.1 or 0.0.0.0)") from None


def check_spec_limits(spec: ExperimentSpec, cfg: ClassroomConfig) -> list[str]:
    """Every way ``spec`` exceeds this classroom's limits, each a sentence for a student."""
    problems: list[str] = []
    if spec.depth > cfg.max_depth:
        problems.append(f"depth {spec.depth} is above this classroom's limit of {cfg.max_depth}")
    limit = cfg.max_width(spec.model)
    if spec.width > limit:
        problems.append(f"width {spec.width} is above this classroom's limit of {limit} "
                        f"for the {spec.model.upper()}")
    if spec.steps > cfg.max_steps:
        problems.append(f"steps {spec.steps} is above this classroom's limit of {cfg.max_steps}")
    return problems
