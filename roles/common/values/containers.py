"""Values made of values: lists, mappings, the empty value that means a default, secrets, pyinfra's own."""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import Any

from roles.common.values.core import ValueType, shown


@dataclass(frozen=True)
class ListOf(ValueType):
    """A list of values of one type, of bounded length."""

    item: ValueType
    max_items: int = 64

    @property
    def annotation(self) -> Any:
        return tuple[self.item.annotation, ...]

    @property
    def describe(self) -> str:
        return f"a list of at most {self.max_items} items, each a {self.item.name}"

    def has_type(self, value: Any) -> bool:
        return isinstance(value, (list, tuple))

    def problem(self, value: tuple) -> str | None:
        if len(value) > self.max_items:
            return f"must have at most {self.max_items} items, got {len(value)}"
        for index, item in enumerate(value, 1):
            problem = self.item(item)
            if problem:
                return f"item {index}: {problem}"
        return None


@dataclass(frozen=True)
class Mapping(ValueType):
    """A mapping of one value type to another, of bounded size."""

    keys: ValueType
    values: ValueType
    max_items: int = 64

    @property
    def annotation(self) -> Any:
        return dict[self.keys.annotation, self.values.annotation]

    @property
    def describe(self) -> str:
        return f"a mapping of {self.keys.name} to {self.values.name}, at most {self.max_items} entries"

    def has_type(self, value: Any) -> bool:
        return isinstance(value, MappingABC)

    def problem(self, value: MappingABC) -> str | None:
        if len(value) > self.max_items:
            return f"must have at most {self.max_items} entries, got {len(value)}"
        for key, item in value.items():
            problem = self.keys(key)
            if problem:
                return f"name {shown(key)}: {problem}"
            problem = self.values(item)
            if problem:
                return f"{key!r}: {problem}"
        return None


@dataclass(frozen=True)
class OrEmpty(ValueType):
    """A text value type, or "" for "not set" (what the empty string means is in ``meaning``)."""

    inner: ValueType
    meaning: str

    annotation = str

    @property
    def describe(self) -> str:
        return f"{self.inner.describe}; or empty: {self.meaning}"

    def problem(self, value: str) -> str | None:
        return None if value == "" else self.inner(value)


@dataclass(frozen=True)
class Secret(ValueType):
    """A secret (a password): checked like ``inner``, but a message never shows the value."""

    inner: ValueType

    @property
    def annotation(self) -> Any:
        return self.inner.annotation

    @property
    def describe(self) -> str:
        return f"{self.inner.describe} (a secret)"

    def has_type(self, value: Any) -> bool:
        return self.inner.has_type(value)

    def __call__(self, value: Any) -> str | None:
        return (
            None if self.inner(value) is None else f"must be {self.inner.describe} (the value is a secret: not shown)"
        )


@dataclass(frozen=True)
class Typed(ValueType):
    """Anything of a Python type, checked by type only: for pyinfra's own rarely used keys (callables, mappings passed
    on as they are), where pyinfra itself decides what the value means."""

    python_type: Any

    @property
    def annotation(self) -> Any:
        return self.python_type

    @property
    def describe(self) -> str:
        return f"a value of type {getattr(self.python_type, '__name__', self.python_type)} (passed to pyinfra as is)"

    def has_type(self, value: Any) -> bool:
        from typeguard import TypeCheckError, check_type

        try:
            check_type(value, self.python_type)
        except TypeCheckError:
            return False
        except Exception:  # typeguard cannot check this annotation: pyinfra will, at connect time
            return True
        return True
