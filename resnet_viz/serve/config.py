"""Teacher configuration: classroom limits, visible presets, classroom mode, bind address.

Read from a TOML file (``docs/classroom-config.example.toml`` lists every key). Like the
spec parser, and through the same validation layer (``resnet_viz.validation``), loading
never raises on a teacher's typo: a bad value falls back to its default and an unknown key
is ignored, each with a notice the app shows to the teacher (``.field`` names the key).
"""
from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import PlainValidator

from resnet_viz.spec import RANGES, ExperimentSpec
from resnet_viz.validation import Notice, Problem, between, check, clip, fail, optional_model, read, typed

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
    data_mirror: str = ""                # base URL of the school's dataset mirror ("" = the sources)

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


def _presets(val: Any) -> tuple[str, ...] | str:
    """ "all", or a list of lesson names made of safe characters only ("../../etc" is refused)."""
    if val == "all":
        return "all"
    if not isinstance(val, list) or not all(isinstance(v, str) and _NAME_RE.fullmatch(v) for v in val):
        fail(f'presets_visible must be "all" or a list of lesson names (got {clip(val)})')
    return tuple(val)


def _address(val: Any) -> str:
    """An address to bind to, normalised ("0.0.0.0"); "localhost" is kept as written."""
    if val == "localhost":
        return val
    try:
        if not isinstance(val, str):  # ip_address() would accept 5 as 0.0.0.5
            raise ValueError
        return str(ipaddress.ip_address(val))
    except ValueError:
        fail(f"bind_address must be an IP address, e.g. 127.0.0.1 or 0.0.0.0 (got {clip(val)})")


def _is_name(val: Any) -> bool:
    return isinstance(val, str) and bool(_NAME_RE.fullmatch(val))


def _is_mirror(val: Any) -> bool:
    return val == "" or (isinstance(val, str) and val.startswith(("http://", "https://")) and len(val) < 500
                         and not any(c.isspace() for c in val))


def _is_folder(val: Any) -> bool:
    return isinstance(val, str) and bool(val.strip()) and "\0" not in val


# Every key of the file as a pydantic type (TOML values arrive typed: no text to read).
_CONFIG = optional_model("ClassroomConfigFile", {
    **{key: Annotated[int, typed(key, int), between(key, lo, hi)] for key, (lo, hi) in _INT_BOUNDS.items()},
    **{key: Annotated[Any, check(key, lambda v: isinstance(v, bool), "be true or false")]
       for key in ("classroom_mode", "worker_processes")},
    "data_dir": Annotated[Any, check("data_dir", _is_folder, "be a folder path")],
    "presets_visible": Annotated[Any, PlainValidator(_presets)],
    "locked_lesson": Annotated[Any, check("locked_lesson", _is_name, "be a lesson name (letters, digits, _ . -)")],
    "bind_address": Annotated[Any, PlainValidator(_address)],
    "data_mirror": Annotated[Any, check("data_mirror", _is_mirror, "be an http(s):// base URL")],
})


def load_config(path: str | Path | None = None) -> tuple[ClassroomConfig, list[Notice]]:
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
        return ClassroomConfig(), [_file_notice(f"config file {path} not found; using the default settings")]
    except (OSError, UnicodeDecodeError) as err:
        return ClassroomConfig(), [_file_notice(f"config file {path} cannot be read ({err}); using the defaults")]
    except tomllib.TOMLDecodeError as err:
        return ClassroomConfig(), [_file_notice(f"config file {path} is not valid TOML ({err}); using the defaults")]
    return parse_config(raw)


def _file_notice(text: str) -> Notice:
    return Notice(Problem("", text, ClassroomConfig()), text)


def parse_config(raw: dict[str, Any]) -> tuple[ClassroomConfig, list[Notice]]:
    """Build a config from a parsed TOML table, one notice per ignored key or value."""
    default = ClassroomConfig()
    known = {f.name for f in fields(ClassroomConfig)}
    values, found = read(_CONFIG, {k: v for k, v in raw.items() if k in known}, vars(default))
    notices = [Notice(p, f"{p.message}; using the default {p.fallback!r}") for p in found]
    notices += [_unknown(key, known) for key in raw if key not in known]
    order = {key: i for i, key in enumerate(raw)}
    notices.sort(key=lambda n: order[n.field])       # as the teacher wrote them
    cfg = replace(default, **values)
    if cfg.locked_lesson is not None and not cfg.classroom_mode:
        text = "locked_lesson has an effect only with classroom_mode = true"
        notices.append(Notice(Problem("locked_lesson", text, related=("classroom_mode",), cross_field=True), text))
    return cfg, notices


def _unknown(key: str, known: set[str]) -> Notice:
    """An unknown key is ignored, with the known key the teacher probably meant."""
    close = difflib.get_close_matches(key, sorted(known), n=1)
    text = f"unknown config key {key!r} ignored" + (f" (did you mean {close[0]}?)" if close else "")
    return Notice(Problem(key, text), text)


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
