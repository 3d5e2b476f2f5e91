"""One way to declare and check settings, for every config dataclass (TrainConfig, ParaphraseConfig,
MiniWorldConfig).

A field says what it allows next to its default::

    lr: float = setting(1e-5, "peak learning rate", bounds=POSITIVE)
    precision: str = setting("auto", "auto, fp32 or bf16", choices=("auto", "fp32", "bf16"))

The type comes from the annotation (``int``, ``float``, ``bool``, ``str``, ``X | None``, ``list[X]``,
``dict[str, float]``); ``bounds`` is a numeric range (of each item of a list, each value of a mapping),
``choices`` a list of names (or a function returning them; a near miss gets "Did you mean …?"),
``check`` any other rule (``value -> problem phrase or None``). One function reads a mapping of
settings (:func:`read_settings`: unknown keys with "Did you mean", values converted and checked, each
error naming its source: ``run.yaml:7: lr``, ``--lr``) and one checks a finished object
(:func:`problems`). Command-line options and forms read their ranges from the same place
(:func:`bounds_of`), so a range is written once.

Every error is a :class:`~paraclip.errors.ConfigError` (exit status 2, no traceback).
"""

from __future__ import annotations

import dataclasses
import json
import math
import reprlib
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from paraclip.checks import ABSURD, Bounds, number_arg
from paraclip.errors import ConfigError
from paraclip.registry import suggest

Choices = tuple[str, ...] | Callable[[], Iterable[str]]


@dataclass(frozen=True)
class Setting:
    """What one field allows beyond its type (kept in the dataclass field's metadata)."""

    help: str = ""
    bounds: Bounds | None = None  # numbers; for a list, each item; for a mapping, each value
    choices: Choices | None = None  # names; for a list, each item
    check: Callable[[Any], str | None] | None = None  # any other rule: value -> problem phrase, or None
    expected: str | None = None  # how to describe an allowed value, when the type and range do not say it
    not_empty: bool = False  # a list needs one item, a text one non-blank character

    def choice_names(self) -> list[str]:
        return list(self.choices() if callable(self.choices) else self.choices or ())


def setting(default: Any = dataclasses.MISSING, help: str = "", *, factory: Callable[[], Any] | None = None,
            bounds: Bounds | None = None, choices: Choices | None = None,
            check: Callable[[Any], str | None] | None = None, expected: str | None = None,
            not_empty: bool = False) -> Any:
    """A dataclass field with its default (or ``factory``) and what it allows (:class:`Setting`)."""
    spec = Setting(help=help, bounds=bounds, choices=choices, check=check, expected=expected, not_empty=not_empty)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"setting": spec})
    return dataclasses.field(default=default, metadata={"setting": spec})


# -- reading the specs -------------------------------------------------------------------------

def specs(cls) -> dict[str, Setting]:
    """Every field's :class:`Setting` (a field declared without one allows any value of its type)."""
    cls = cls if isinstance(cls, type) else type(cls)
    return {f.name: f.metadata.get("setting", Setting()) for f in dataclasses.fields(cls)}


def spec_of(cls, name: str) -> Setting:
    return specs(cls)[name]


def bounds_of(cls, name: str) -> Bounds:
    """The allowed range of numeric field ``name`` (for command-line options and forms)."""
    bounds = spec_of(cls, name).bounds
    if bounds is None:
        raise KeyError(f"{name} has no numeric range")
    return bounds


def number_option(config: type | Callable[[], type], name: str, kind: type = int):
    """An argparse ``type=`` for an option that sets numeric field ``name`` of ``config`` (a class, or a
    function returning it, so that building the parser imports nothing): the option's range is the
    field's (:func:`paraclip.checks.number_arg`), read when the option is used."""
    def parse(text: str):
        cls = config if isinstance(config, type) else config()
        return number_arg(kind, bounds_of(cls, name))(text)

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


def field_type(cls, name: str) -> tuple[Any, bool]:
    """(the field's type without ``None``, whether ``None`` is allowed)."""
    cls = cls if isinstance(cls, type) else type(cls)
    return _strip_optional(typing.get_type_hints(cls)[name])


def _strip_optional(tp) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return tp, False


# -- describing what is allowed ----------------------------------------------------------------

_KIND = {int: "an integer", float: "a number", bool: "true or false", str: "text"}


def describe(cls, name: str) -> str:
    """What field ``name`` allows, as a phrase: 'an integer >= 1', 'one of learnable, fixed', …"""
    spec = spec_of(cls, name)
    tp, optional = field_type(cls, name)
    origin = typing.get_origin(tp)
    if spec.expected:
        text = spec.expected
    elif origin is list:
        text = "a list of " + _describe_item(typing.get_args(tp)[0], spec, plural=True)
    elif origin is dict:
        text = "a mapping of names to " + _describe_item(float, spec, plural=True)
    else:
        text = _describe_item(tp, spec)
    return text


def _describe_item(tp, spec: Setting, plural: bool = False) -> str:
    if spec.choices is not None:
        return ("names from " if plural else "one of ") + ", ".join(spec.choice_names())
    kind = {int: "integers", float: "numbers", bool: "true/false values", str: "texts"}[tp] if plural \
        else _KIND.get(tp, getattr(tp, "__name__", str(tp)))
    if tp in (int, float) and spec.bounds is not None:
        return f"{kind} {spec.bounds.describe()}"
    return kind


# -- converting and checking one value ---------------------------------------------------------

_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}
_NONE = {"none", "null", "~", ""}


class _Bad(ValueError):
    """A value of the wrong type or shape (the message is a phrase: 'must be …')."""


def convert(cls, name: str, value: Any, text: bool = False) -> Any:
    """``value`` as field ``name``'s type. ``text``: strings are parsed (command-line values, and YAML
    values of configs that take them: ``"1e-4"``, ``"false"``, ``"a,b"``, ``"l1=1,l2=0.5"``); without
    it only a number written as text is read as a number (YAML 1.1 reads ``1e-4`` as text). Raises
    ValueError with a 'must be …' phrase."""
    tp, optional = field_type(cls, name)
    if value is None or (text and isinstance(value, str) and value.strip().lower() in _NONE
                          and (tp is not str or value.strip().lower() in ("none", "null"))):
        if optional:
            return None
        raise _Bad(f"must be {describe(cls, name)} (a value is required)")
    origin = typing.get_origin(tp)
    try:
        if origin is list:
            if text and isinstance(value, str):
                value = [p.strip() for p in value.split(",") if p.strip()]
            if not isinstance(value, (list, tuple)):
                raise _Bad("")
            item_tp = typing.get_args(tp)[0]
            return [_convert_scalar(item_tp, v, text) for v in value]
        if origin is dict:
            if text and isinstance(value, str):
                value = _parse_mapping(value)
            if not isinstance(value, dict):
                raise _Bad("")
            return {str(k): _convert_scalar(float, v, True) for k, v in value.items()}
        return _convert_scalar(tp, value, text)
    except (_Bad, ValueError, TypeError, OverflowError, RecursionError):
        raise _Bad(f"must be {describe(cls, name)} (got {_shown(value)})") from None


def _convert_scalar(tp, value: Any, text: bool) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        if text and isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _Bad("")
    if tp in (int, float):
        if isinstance(value, bool):
            raise _Bad("")
        if isinstance(value, str):
            number = float(value.strip())  # ValueError for text that is not a number
        elif isinstance(value, (int, float)):
            number = value
        else:
            raise _Bad("")
        if tp is float:
            return float(number)
        if isinstance(number, int):
            return number
        if not math.isfinite(number) or not float(number).is_integer():
            raise _Bad("")
        return int(number)
    if tp is str:
        if isinstance(value, str):
            return value
        if text and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _Bad("")
    return value


def _parse_mapping(text: str) -> dict:
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    out = {}
    for pair in (p for p in text.split(",") if p.strip()):
        if "=" not in pair:
            raise _Bad("")
        key, val = pair.split("=", 1)
        out[key.strip()] = val.strip()
    return out


def _shown(value: Any) -> str:
    if value is None or isinstance(value, (str, int, float, bool)):
        return repr(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return reprlib.repr(value)


def problem(cls, name: str, value: Any) -> str | None:
    """What is wrong with an already converted ``value`` for field ``name`` (a phrase: 'must be … (got …)'
    or '… is not …'), or None."""
    spec = spec_of(cls, name)
    tp, optional = field_type(cls, name)
    if value is None:
        return None if optional else f"must be {describe(cls, name)} (a value is required)"
    origin = typing.get_origin(tp)
    if origin is list:
        if not isinstance(value, list):
            return f"must be {describe(cls, name)}, e.g. [0, 1] (got {_shown(value)})"
        if spec.not_empty and not value:
            return f"must list at least one value: {describe(cls, name)} (got [])"
        items, item_tp = value, typing.get_args(tp)[0]
    elif origin is dict:
        if not isinstance(value, dict):
            return f"must be {describe(cls, name)} (got {_shown(value)})"
        items, item_tp = list(value.values()), float
    else:
        items, item_tp = [value], tp
    for item in items:
        found = _item_problem(cls, name, spec, item_tp, item)
        if found:
            return found
    if spec.check is not None:
        return spec.check(value)
    return None


def _item_problem(cls, name: str, spec: Setting, tp, value: Any) -> str | None:
    ok_type = (isinstance(value, bool) if tp is bool else
               isinstance(value, int) and not isinstance(value, bool) if tp is int else
               isinstance(value, (int, float)) and not isinstance(value, bool) if tp is float else
               isinstance(value, str) if tp is str else True)
    if not ok_type:
        return f"must be {describe(cls, name)} (got {_shown(value)})"
    if tp in (int, float):
        if tp is float and not math.isfinite(value):
            return f"must be a finite number {(spec.bounds or Bounds()).describe()} (got {value})"
        return (spec.bounds or Bounds(-ABSURD, ABSURD)).problem(value)
    if tp is str:
        if spec.not_empty and not value.strip():
            return f"must be {describe(cls, name)} (got {value!r})"
        if spec.choices is not None:
            names = spec.choice_names()
            if value not in names:
                close = suggest(value, names)
                return (f"must be one of {', '.join(names)} (got {value!r})."
                        + (f" Did you mean {', '.join(map(repr, close))}?" if close else ""))
    return None


def check_value(cls, name: str, value: Any, source: str = "", text: bool = False) -> Any:
    """``value`` converted to field ``name``'s type and checked; a :class:`ConfigError` naming ``source``
    (``"--lr"`` replaces the name; ``"run.yaml:7"`` comes before it) otherwise."""
    try:
        converted = convert(cls, name, value, text=text)
    except ValueError as exc:
        raise ConfigError(_message(cls, name, source, str(exc)), file_text=_file_text(value)) from None
    found = problem(cls, name, converted)
    if found:
        raise ConfigError(_message(cls, name, source, found), file_text=_file_text(value))
    return converted


def _file_text(value: Any) -> tuple[str, ...]:
    return (repr(value),) if isinstance(value, str) else ()


def label(name: str, source: str = "") -> str:
    """How an error names a setting: ``--lr`` (a flag), ``run.yaml:7: lr``, or ``lr``."""
    if source.startswith("-"):
        return source
    return f"{source}: {name}" if source else name


def _message(cls, name: str, source: str, phrase: str) -> str:
    help_text = spec_of(cls, name).help
    end = "" if phrase.endswith(("?", ".")) else "."
    return f"{label(name, source)} {phrase}{end}" + (f" ({name}: {help_text}.)" if help_text else "")


# -- reading a mapping of settings -------------------------------------------------------------

def check_keys(cls, keys: Iterable[str], source: str = "", kind: str = "setting",
               known: Iterable[str] | None = None, aliases: Mapping[str, str] | None = None,
               lines: Mapping[str, int] | None = None) -> None:
    """Refuse a key that is not a setting, with close matches ("Did you mean 'lr'?") and the list.
    ``known``: the accepted names (default: the fields of ``cls``); ``aliases``: names other tools use
    for a field (suggested as that field)."""
    names = list(known if known is not None else specs(cls))
    aliases = dict(aliases or {})
    for key in keys:
        if key in names:
            continue
        close = list(dict.fromkeys(aliases.get(c, c) for c in suggest(str(key), names + list(aliases))))
        where = f"{source}:{lines[key]}" if lines and key in lines else source
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ConfigError(f"{where + ': ' if where else ''}unknown {kind} {key!r}.{hint} Known: {', '.join(names)}.",
                          file_text=(repr(key),))


def read_settings(cls, data: Mapping[str, Any], source: str = "", *, text: bool = False,
                  lines: Mapping[str, int] | None = None, flags: Mapping[str, str] | None = None,
                  kind: str = "setting", aliases: Mapping[str, str] | None = None,
                  known: Iterable[str] | None = None) -> dict[str, Any]:
    """Each value of ``data`` converted to its field's type and checked; unknown keys refused.

    ``source`` names where the values come from (a file); ``lines`` maps keys to their line in it;
    ``flags`` maps keys to the command-line option that gave them (``{"lr": "--lr"}``), which errors
    name instead. ``text``: parse strings (see :func:`convert`). ``known``: the accepted keys when
    they are not exactly the fields of ``cls`` (a key outside ``cls`` is returned unchecked).
    """
    check_keys(cls, data, source, kind=kind, known=known, aliases=aliases, lines=lines)
    fields = specs(cls)
    out = {}
    for key, value in data.items():
        if key not in fields:
            out[key] = value
            continue
        if flags and key in flags:
            where = flags[key]
        else:
            where = f"{source}:{lines[key]}" if source and lines and key in lines else source
        out[key] = check_value(cls, key, value, where, text=text)
    return out


def problems(obj, source: str = "") -> list[str]:
    """Every field of the dataclass ``obj`` whose value is not allowed, as 'name must be …' phrases."""
    return [f"{label(name, source)} {found}" for name in specs(obj)
            if (found := problem(obj, name, getattr(obj, name)))]


__all__ = ["Setting", "bounds_of", "check_keys", "check_value", "convert", "describe", "field_type", "label",
           "number_option", "problem", "problems", "read_settings", "setting", "spec_of", "specs"]
