"""Typed role settings read from inventory data, with errors that name the host and the key.

A role declares its settings as a frozen dataclass. Each field is one inventory key, spelled
``<role>_<field>``; its type annotation is the accepted type and ``setting(...)`` adds the value
type (roles/common/values.py: what the value may be, checked before it reaches any host) and the
one-line documentation.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pyinfra.api.exceptions import PyinfraError

from roles.common.values import ValueType, shown


@dataclass(frozen=True)
class Problem:
    host: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"host {self.host!r}, key {self.key!r}: {self.message}"


class InventoryError(PyinfraError):
    """The inventory is malformed. Raised before pyinfra connects to any host."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems), key=lambda p: (p.host, p.key, p.message))
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid inventory, no host was touched:\n{lines}")


def setting(default: Any, doc: str, check: ValueType | None = None) -> Any:
    """A settings field: its default, a one-line reason for it, and its value type (roles.common.values).

    The value type is required: a value that no type checks reaches files and commands on the hosts as it is.
    """
    if not isinstance(check, ValueType):
        raise TypeError(f"setting {doc!r} needs a value type from roles.common.values, got {check!r}")
    factory = (lambda d=default: d) if isinstance(default, (dict, list)) else None
    kwargs: dict[str, Any] = {"default_factory": factory} if factory else {"default": default}
    return dataclasses.field(metadata={"doc": doc, "check": check}, **kwargs)


def prefixed_keys(settings_cls: type, prefix: str) -> dict[str, dataclasses.Field]:
    return {f"{prefix}_{field.name}": field for field in dataclasses.fields(settings_cls)}


def parse_settings(settings_cls: type, prefix: str, host: str, data: Mapping[str, Any], problems: list[Problem]):
    """Build ``settings_cls`` from the ``<prefix>_*`` keys of ``data``; record what is wrong.

    Unknown keys under the prefix are problems too: a typo must not silently fall back to a default.
    """
    hints = _type_hints(settings_cls)
    fields = prefixed_keys(settings_cls, prefix)
    for key in data:
        if key.startswith(f"{prefix}_") and key not in fields:
            problems.append(Problem(host, key, f"unknown setting for role {prefix!r}{_did_you_mean(key, fields)}"))

    values = {}
    for key, field in fields.items():
        if key not in data:
            continue
        value = data[key]
        error = type_error(value, hints[field.name])
        if error is None and field.metadata.get("check"):
            error = field.metadata["check"](value)
        if error:
            problems.append(Problem(host, key, error))
        else:
            values[field.name] = _freeze(value)
    if any(p.host == host and p.key in fields for p in problems):
        return None
    return settings_cls(**values)


@functools.cache
def _type_hints(settings_cls: type) -> dict[str, Any]:
    return typing.get_type_hints(settings_cls)  # evaluating string annotations costs more than a whole check


def type_error(value: Any, annotation: Any) -> str | None:
    """None when ``value`` has the annotated type, else what was expected."""
    return None if _matches(value, annotation) else f"expected {_describe(annotation)}, got {shown(value)}"


def _matches(value: Any, annotation: Any) -> bool:
    origin = get_origin(annotation)
    if annotation is Any:
        return True
    if origin is Literal:
        return value in get_args(annotation) and not isinstance(value, bool)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arm) for arm in get_args(annotation))
    if origin is tuple:
        item = get_args(annotation)[0]
        return isinstance(value, (list, tuple)) and all(_matches(v, item) for v in value)
    if origin in (dict, Mapping):
        key_type, value_type = get_args(annotation)
        return isinstance(value, Mapping) and all(
            _matches(k, key_type) and _matches(v, value_type) for k, v in value.items()
        )
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        # bool is an int to Python, never to a person writing an inventory.
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _describe(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(annotation))
    if origin is tuple:
        return f"a list of {_describe(get_args(annotation)[0])}"
    if origin in (dict, Mapping):
        key_type, value_type = get_args(annotation)
        return f"a mapping of {_describe(key_type)} to {_describe(value_type)}"
    return {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return types.MappingProxyType({k: _freeze(v) for k, v in value.items()})
    return value


def _did_you_mean(key: str, known: Mapping[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
