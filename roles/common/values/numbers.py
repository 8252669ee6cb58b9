"""Numbers and switches: whole numbers, ports, numbers, flags, a choice among a few, one of several types."""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Any, Literal

from roles.common.values.core import ValueType, shown


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(number: float) -> str:
    """A bound as people write it: 16777216, 0.001, 4096."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


@dataclass(frozen=True)
class WholeNumber(ValueType):
    """An integer in a closed range: not a bool, not a float (not even 2.0)."""

    low: int
    high: int

    annotation = int

    @property
    def describe(self) -> str:
        return f"a whole number from {_plain(self.low)} to {_plain(self.high)}"

    def has_type(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)  # bool is an int to Python, not to people

    def problem(self, value: int) -> str | None:
        if self.low <= value <= self.high:
            return None
        return f"must be between {_plain(self.low)} and {_plain(self.high)}, got {shown(value)}"


@dataclass(frozen=True)
class Port(WholeNumber):
    """A TCP port, 1 to 65535 (port clashes across roles on one host are refused by the inventory check)."""

    low: int = 1
    high: int = 65535

    @property
    def describe(self) -> str:
        return "a TCP port, 1 to 65535"


@dataclass(frozen=True)
class Number(ValueType):
    """Finite: NaN and infinity are refused (NaN passes every comparison as false, so a range alone lets it in)."""

    low: float
    high: float

    annotation = float

    @property
    def describe(self) -> str:
        return f"a number from {_plain(self.low)} to {_plain(self.high)}"

    def has_type(self, value: Any) -> bool:
        return _is_number(value)

    def problem(self, value: float) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {shown(value)}"
        if self.low <= value <= self.high:
            return None
        return f"must be between {_plain(self.low)} and {_plain(self.high)}, got {shown(value)}"


@dataclass(frozen=True)
class Flag(ValueType):
    """true or false, nothing that merely looks like it ("yes", 1)."""

    annotation = bool

    @property
    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Choice(ValueType):
    """One of a fixed set of words."""

    options: tuple[str, ...]

    def __init__(self, *options: str):
        object.__setattr__(self, "options", options)

    @property
    def annotation(self) -> Any:
        return Literal[self.options]

    @property
    def describe(self) -> str:
        if len(self.options) == 1:
            return repr(self.options[0])
        return "one of " + ", ".join(repr(option) for option in self.options)

    @property
    def name(self) -> str:
        return " or ".join(repr(option) for option in self.options)

    def has_type(self, value: Any) -> bool:
        return isinstance(value, str)

    def problem(self, value: str) -> str | None:
        return None if value in self.options else f"expected {' or '.join(map(repr, self.options))}, got {shown(value)}"


@dataclass(frozen=True)
class Either(ValueType):
    """One of several value types, e.g. a number or 'auto': the first whose Python type fits judges the value."""

    arms: tuple[ValueType, ...]

    def __init__(self, *arms: ValueType):
        object.__setattr__(self, "arms", arms)

    @property
    def annotation(self) -> Any:
        return typing.Union[tuple(arm.annotation for arm in self.arms)]  # noqa: UP007 (built from a tuple)

    @property
    def describe(self) -> str:
        return " or ".join(arm.describe for arm in self.arms)

    def has_type(self, value: Any) -> bool:
        return any(arm.has_type(value) for arm in self.arms)

    def problem(self, value: Any) -> str | None:
        fitting = [arm for arm in self.arms if arm.has_type(value)]
        problems = [arm(value) for arm in fitting]
        if any(p is None for p in problems):
            return None
        if len(fitting) == 1 and not isinstance(fitting[0], Choice):
            return problems[0]  # e.g. the range of the number arm
        return f"expected {self.describe}, got {shown(value)}"
