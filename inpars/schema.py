"""Typed TOML tables: build a frozen dataclass from a table, rejecting what does not fit.

:func:`section_from_dict` checks every key against the dataclass's fields and every value
against its type hint (``str``, ``int``, ``float``, ``bool``, ``Literal``, unions, lists,
tuples, tables, nested dataclasses); ``__post_init__`` checks of the dataclass become
:class:`ConfigError` too. Messages name the file, the section and the key, what was
expected and what was found.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from inpars.errors import ConfigError, did_you_mean

T = TypeVar("T")


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(hint) if a is not type(None)) + " (or leave out)"
    if origin in (list, tuple):
        return f"a list of {_describe(get_args(hint)[0])}"
    if origin is dict:
        return f"a table of {_describe(get_args(hint)[1])}"
    if dataclasses.is_dataclass(hint):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(hint, str(hint))


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = get_origin(hint)
    bad = ConfigError(f"{where}: expected {_describe(hint)}, got {value!r}")
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise bad
        return section_from_dict(hint, value, where)
    if origin is Literal:
        if value not in get_args(hint):
            raise bad
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(hint):
            return None  # not from TOML (it has no null), but from a dict such as a manifest's config
        args = [a for a in get_args(hint) if a is not type(None)]
        for arg in args:
            try:
                return _convert(value, arg, where)
            except ConfigError:
                continue
        raise bad
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise bad
        items = [_convert(v, get_args(hint)[0], f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return {str(k): _convert(v, get_args(hint)[1], _child(where, str(k))) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    if hint is Any:
        return value
    raise ConfigError(f"{where}: unsupported setting type {hint!r}")


def _child(where: str, key: str, *, section: bool = False) -> str:
    """Where a key is, for messages: ``x.toml [data] source``, ``x.toml [train] lr``."""
    if section:
        return f"{where} [{key}]"
    return f"{where} {key}" if where.endswith("]") else f"{where}.{key}"


def section_from_dict(
    cls: type[T],
    data: dict[str, Any],
    where: str,
    *,
    whole_file: bool = False,
    internal: tuple[str, ...] = (),
) -> T:
    """Build dataclass ``cls`` from a TOML table, rejecting unknown keys.

    ``whole_file``: the table is a whole file, so its keys are ``[sections]`` (in messages
    too). ``internal`` fields are set by code, never from the file.
    """
    hints = get_type_hints(cls)
    settable = [f.name for f in dataclasses.fields(cls) if f.name not in internal]  # type: ignore[arg-type]
    for key in data:
        if key not in settable:
            what = "section" if whole_file else "key"
            raise ConfigError(
                f"{where}: unknown {what} '{key}'{did_you_mean(str(key), settable)}. "
                f"Fix: use one of {', '.join(settable)} (or remove it)"
            )
    kwargs = {
        key: _convert(value, hints[key], _child(where, key, section=whole_file))
        for key, value in data.items()
    }
    try:
        return cls(**kwargs)
    except ValueError as exc:  # __post_init__ checks of a section
        raise ConfigError(f"{where}: {exc}") from None
