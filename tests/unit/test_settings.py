"""The settings type checker: what an inventory author may write for each kind of setting."""

from typing import Literal

import pytest

from roles.common.settings import type_error


@pytest.mark.parametrize(
    "value, annotation, ok",
    [
        (3, int, True),
        (True, int, False),  # bool is an int to Python, not to a person
        (3.5, int, False),
        (3, float, True),
        ("3", float, False),
        ("auto", int | Literal["auto"], True),
        (512, int | Literal["auto"], True),
        ("big", int | Literal["auto"], False),
        (["a", "b"], tuple[str, ...], True),
        (("a", 1), tuple[str, ...], False),
        ({"nas": "10.0.0.5"}, dict[str, str], True),
        ({"nas": 5}, dict[str, str], False),
        ("never", Literal["always", "madvise", "never"], True),
        ("sometimes", Literal["always", "madvise", "never"], False),
    ],
)
def test_type_check(value, annotation, ok):
    assert (type_error(value, annotation) is None) is ok


def test_type_error_says_what_was_expected():
    assert type_error("x", int | Literal["auto"]) == "expected a whole number or 'auto', got 'x'"
