"""What every value type is: a check that says what it accepts and what it refuses, and never raises."""

from __future__ import annotations

from typing import Any

SHOWN_LENGTH = 80


def shown(value: Any) -> str:
    """``repr`` of a value for a message, cut short; never raises (repr of a huge int does, by default)."""
    try:
        text = repr(value)
    except Exception:  # ValueError: too many digits; RecursionError: a self-containing list
        return f"a value too large to show ({type(value).__name__})"
    return text if len(text) <= SHOWN_LENGTH else text[: SHOWN_LENGTH - 3] + "..."


class ValueType:
    """A value type: ``type(value)`` is None or the problem; ``annotation``; ``describe``."""

    @property
    def annotation(self) -> Any:
        raise NotImplementedError

    @property
    def describe(self) -> str:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """A short noun for the kind of value ("DNS name"), for the descriptions of lists and mappings of them."""
        return self.describe

    def has_type(self, value: Any) -> bool:
        """Whether ``value`` is of the Python type this value type reads (its content is checked after)."""
        return isinstance(value, self.annotation)

    def problem(self, value: Any) -> str | None:
        """The content check, for a value of the right Python type."""
        return None

    def __call__(self, value: Any) -> str | None:
        if not self.has_type(value):
            return f"expected {self.describe}, got {shown(value)}"
        return self.problem(value)

    def __str__(self) -> str:
        return self.describe
