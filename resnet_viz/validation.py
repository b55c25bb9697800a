"""The one validation layer: the experiment spec, the classroom config and lesson settings.

Each of them declares its fields once, as pydantic types built from the blocks here: a
*reader* that turns raw input into a typed value (:func:`from_text` for URLs and the CLI,
:func:`typed` for Python and TOML values), then *checks* (:func:`between`, :func:`one_of`,
:func:`check`). Validating answers with :class:`Problem` records located by pydantic's
``loc`` (the field), never with prose a caller would have to parse; :class:`Notice` is the
sentence people read with that record attached.

Input is never trusted and parsing never raises on it: :func:`read` keeps the fields that
pass and reports each one that fails with the value to use instead. Every message echoes
the offending value through :func:`clip`, so ``?steps=1e308`` is not answered with 309
digits. Layer: the bottom (stdlib and pydantic only); any layer may use it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, NoReturn

from pydantic import AfterValidator, BaseModel, BeforeValidator, PlainValidator, ValidationError, create_model
from pydantic_core import PydanticCustomError

CLIP = 40                  # characters of an offending value a message echoes at most
_OURS = "resnet_viz"       # the pydantic error type of the sentences raised by fail()


@dataclass(frozen=True)
class Problem:
    """One thing wrong with untrusted input, located by field.

    ``field`` is the field to blame (and to reset), "" for the input as a whole;
    ``message`` a sentence a person can act on, naming the field; ``fallback`` the value
    used instead. A *cross-field* problem is a value fine on its own that clashes with
    others (CNN depth 21); ``related`` names the other fields a reset could also fix.
    """

    field: str
    message: str
    fallback: Any = None
    related: tuple[str, ...] = ()
    cross_field: bool = False

    def involves(self, name: str) -> bool:
        """Whether resetting ``name`` may fix this problem."""
        return name == self.field or name in self.related


class Notice(str):
    """A notice as people read it, with its :class:`Problem` attached.

    A ``str``, so pages and logs show it as before; callers that act on a notice read
    ``.field`` / ``.message`` / ``.cross_field`` instead of matching its words.
    """

    problem: Problem

    def __new__(cls, problem: Problem, text: str) -> "Notice":
        self = super().__new__(cls, text)
        self.problem = problem
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # str's own pickling would drop the problem
        return (Notice, (self.problem, str(self)))

    @property
    def field(self) -> str:
        return self.problem.field

    @property
    def message(self) -> str:
        """The problem without what was done about it ("; using the default ...")."""
        return self.problem.message

    @property
    def fallback(self) -> Any:
        return self.problem.fallback

    @property
    def cross_field(self) -> bool:
        return self.problem.cross_field


# --- how messages show values --------------------------------------------------------

def plain(v: Any) -> str:
    """A number as people (and URLs) write it: 20, not 20.0; 1e-06 stays exact."""
    if isinstance(v, float):
        return repr(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    return str(v)


def clip(value: Any, limit: int = CLIP) -> str:
    """``value`` as a message echoes it: at most about ``limit`` characters, whatever was sent.

    Text is quoted and cut; a number too long to show (the int that ``"1e308"`` reads as)
    is shown in scientific notation.
    """
    if isinstance(value, str):
        return repr(value[:limit])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = plain(value)
        if len(text) <= limit:
            return text
        try:
            return format(float(value), ".6g")
        except OverflowError:          # an int beyond any float
            return text[:limit - 3] + "..."
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def fail(message: str) -> NoReturn:
    """Reject a value with ``message``, a sentence for a person that names the field."""
    raise PydanticCustomError(_OURS, "{message}", {"message": message})


# --- readers: raw input -> a typed value ---------------------------------------------

def from_text(name: str, kind: type) -> PlainValidator:
    """Read ``kind`` (int, float or str) from text typed by a person (URL, CLI, form).

    Accepts what people type for a number: " 20 ", "1e1", "20.0" for an int, as the spec
    always has (old shared links keep their meaning).
    """
    def read(raw: Any) -> Any:
        text = str(raw).strip()
        if kind is str:
            return text
        try:
            val = float(text)
        except (ValueError, OverflowError):
            fail(f"{name}={clip(str(raw))} is not a valid {kind.__name__} (not a number)")
        if not math.isfinite(val):
            fail(f"{name}={clip(str(raw))} is not a valid {kind.__name__} (not a finite number)")
        if kind is int and not val.is_integer():
            fail(f"{name}={clip(str(raw))} is not a valid int (not a whole number)")
        return int(val) if kind is int else val
    return PlainValidator(read)


def typed(name: str, kind: type) -> PlainValidator:
    """Check a value that is already typed (Python, TOML): no strings read as numbers,
    no booleans as 0/1. An int field takes a whole float (20.0) and reads it as 20."""
    def read(v: Any) -> Any:
        if kind is str:
            return v                   # the field's own checks say what text is allowed
        # an int is always finite and whole (and may be too big for float(): 10**400)
        number = not isinstance(v, bool) and (isinstance(v, int) or isinstance(v, float) and math.isfinite(v))
        if kind is int and not (number and (isinstance(v, int) or v.is_integer())):
            fail(f"{name} must be a whole number (got {clip(v)})")
        if not number:
            fail(f"{name} must be a finite number (got {clip(v)})")
        return int(v) if kind is int else v
    return PlainValidator(read)


def items(name: str, most: int, least: int = 1) -> BeforeValidator:
    """A list from "4, 8" (or a list), blanks dropped, with ``least`` to ``most`` items."""
    def split(raw: Any) -> list[Any]:
        parts = raw.split(",") if isinstance(raw, str) else list(raw) if isinstance(raw, (list, tuple)) else [raw]
        parts = [p for p in parts if not (isinstance(p, str) and not p.strip())]
        if not least <= len(parts) <= most:
            fail(f"{name} needs {least} to {most} values (got {len(parts)})")
        return parts
    return BeforeValidator(split)


# --- checks: a typed value -> the same value, or a problem ---------------------------

def between(name: str, lo: float | None, hi: float | None) -> AfterValidator:
    """``lo <= value <= hi``; either bound may be None (no bound)."""
    low = -math.inf if lo is None else lo
    high = math.inf if hi is None else hi
    allowed = (f"between {plain(lo)} and {plain(hi)}" if lo is not None and hi is not None else
               f"at least {plain(lo)}" if lo is not None else f"at most {plain(hi)}")

    def inside(v: Any) -> Any:
        if not low <= v <= high:
            fail(f"{name} must be {allowed} (got {clip(v)})")
        return v
    return AfterValidator(inside)


def one_of(name: str, choices: Iterable[str]) -> AfterValidator:
    """The value is one of ``choices``."""
    options = tuple(choices)

    def chosen(v: Any) -> Any:
        if v not in options:
            fail(f"{name} must be one of {', '.join(options)} (got {clip(str(v))})")
        return v
    return AfterValidator(chosen)


def check(name: str, ok: Callable[[Any], bool], what: str) -> AfterValidator:
    """``ok(value)``, else "``name`` must be ``what`` (got ...)"."""
    def checked(v: Any) -> Any:
        if not ok(v):
            fail(f"{name} must {what} (got {clip(v)})")
        return v
    return AfterValidator(checked)


# --- whole inputs ---------------------------------------------------------------------

def optional_model(name: str, types: Mapping[str, Any]) -> type[BaseModel]:
    """A pydantic model whose fields are all optional: validating a dict checks only the
    keys it has (a URL names a few fields; the rest come from a base)."""
    return create_model(name, **{key: (typ, None) for key, typ in types.items()})


def problems(err: ValidationError, fallbacks: Mapping[str, Any] | None = None) -> list[Problem]:
    """One :class:`Problem` per field of a pydantic error, located by the error's ``loc``."""
    found: dict[str, Problem] = {}
    for e in err.errors(include_url=False, include_context=False):
        field = str(e["loc"][0]) if e["loc"] else ""
        if field not in found:
            text = e["msg"] if e["type"] == _OURS or not field else f"{field}: {e['msg']}"
            found[field] = Problem(field, text, (fallbacks or {}).get(field))
    return list(found.values())


def problems_in(schema: type[BaseModel], values: Mapping[str, Any]) -> list[Problem]:
    """Only the problems of ``values`` (no fallbacks, no values): the cheapest check."""
    try:
        schema.model_validate(values)
    except ValidationError as err:
        return problems(err)
    return []


def read(schema: type[BaseModel], raw: Mapping[str, Any],
         fallbacks: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Validate ``raw`` field by field; never raises.

    Returns the typed values of the fields that pass and one problem per field that does
    not (in ``raw``'s order, each with its value from ``fallbacks``). One pydantic pass
    when all is well; a second, without the failed fields, when not.
    """
    found: list[Problem] = []
    todo = dict(raw)
    for _ in range(2):
        try:
            parsed = schema.model_validate(todo)
        except ValidationError as err:
            found += problems(err, fallbacks)
            failed = {p.field for p in found}
            todo = {k: v for k, v in todo.items() if k not in failed}
            continue
        order = {key: i for i, key in enumerate(raw)}
        found.sort(key=lambda p: order.get(p.field, len(order)))
        return {key: getattr(parsed, key) for key in parsed.model_fields_set}, found
    return {}, found  # pragma: no cover - the fields are independent: the second pass passes


def first_message(err: ValidationError) -> str:
    """The first problem's sentence (for callers that raise one ``ValueError``)."""
    found = problems(err)
    return found[0].message if found else str(err)
