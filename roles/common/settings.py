"""Typed role settings read from inventory data, with errors that name the host and the key.

A role declares its settings as a frozen dataclass. Each field is one inventory key, spelled
``<role>_<field>``; ``setting(...)`` gives its default, its one-line documentation and its value type
(roles/common/values/), which alone decides what the value may be, Python type and content, before it
reaches any host. The field's annotation says the same for readers and type checkers (tests/unit/test_values.py
holds the two equal).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyinfra.api.exceptions import PyinfraError

from roles.common.values.core import ValueType


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


def setting(
    default: Any, doc: str, check: ValueType | None = None, *, site_wide: bool = False, renamed_from: str = ""
) -> Any:
    """A settings field: its default, a one-line reason for it, and its value type (roles.common.values).

    The value type is required: a value that no type checks reaches files and commands on the hosts as it is.
    ``site_wide``: the inventory check holds the key equal on every host, for the site reads it once.
    ``renamed_from``: the whole key an older clawlan knew it by; an inventory that still uses it is told the new one.
    """
    if not isinstance(check, ValueType):
        raise TypeError(f"setting {doc!r} needs a value type from roles.common.values, got {check!r}")
    factory = (lambda d=default: d) if isinstance(default, (dict, list)) else None
    kwargs: dict[str, Any] = {"default_factory": factory} if factory else {"default": default}
    metadata = {"doc": doc, "check": check, "site_wide": site_wide, "renamed_from": renamed_from}
    return dataclasses.field(metadata=metadata, **kwargs)


def all_site_wide(settings_cls: type) -> type:
    """Marks every key under the class's prefix site-wide, keys it does not know included: one thing for the whole
    site (one Prometheus, one latency suite), so no host may say otherwise, not even in a typo."""
    settings_cls.all_site_wide = True
    return settings_cls


def every_key_site_wide(settings_cls: type) -> bool:
    return getattr(settings_cls, "all_site_wide", False)


def is_site_wide(settings_cls: type, field: dataclasses.Field) -> bool:
    return every_key_site_wide(settings_cls) or field.metadata["site_wide"]


def prefixed_keys(settings_cls: type, prefix: str) -> dict[str, dataclasses.Field]:
    return {f"{prefix}_{field.name}": field for field in dataclasses.fields(settings_cls)}


def parse_settings(settings_cls: type, prefix: str, host: str, data: Mapping[str, Any], problems: list[Problem]):
    """Build ``settings_cls`` from the ``<prefix>_*`` keys of ``data``; record what is wrong.

    Unknown keys under the prefix are problems too: a typo must not silently fall back to a default.
    """
    fields = prefixed_keys(settings_cls, prefix)
    for key in data:
        if key.startswith(f"{prefix}_") and key not in fields:
            problems.append(Problem(host, key, f"unknown setting for role {prefix!r}{_did_you_mean(key, fields)}"))

    values = {}
    for key, field in fields.items():
        if key not in data:
            continue
        value = data[key]
        error = field.metadata["check"](value)  # the value type checks the Python type, then the content
        if error:
            problems.append(Problem(host, key, error))
        else:
            values[field.name] = _freeze(value)
    if any(p.host == host and p.key in fields for p in problems):
        return None
    return settings_cls(**values)


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
