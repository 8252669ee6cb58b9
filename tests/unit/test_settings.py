"""What an inventory author may write for each kind of setting: the value types check the Python type first (a bool
is no number to a person, a string no list), then the content."""

import pytest

from roles.common.values.containers import ListOf, Mapping
from roles.common.values.numbers import Choice, Either, Number, WholeNumber
from roles.common.values.text import Text

WHOLE = WholeNumber(0, 1000)
SIZE_OR_AUTO = Either(WholeNumber(0, 1000), Choice("auto"))
THP = Choice("always", "madvise", "never")


@pytest.mark.parametrize(
    "value, value_type, ok",
    [
        (3, WHOLE, True),
        (True, WHOLE, False),  # bool is an int to Python, not to a person
        (3.5, WHOLE, False),
        (3, Number(0, 1000), True),
        ("3", Number(0, 1000), False),
        ("auto", SIZE_OR_AUTO, True),
        (512, SIZE_OR_AUTO, True),
        ("big", SIZE_OR_AUTO, False),
        (["a", "b"], ListOf(Text()), True),
        (("a", 1), ListOf(Text()), False),
        ({"nas": "10.0.0.5"}, Mapping(Text(), Text()), True),
        ({"nas": 5}, Mapping(Text(), Text()), False),
        ("never", THP, True),
        ("sometimes", THP, False),
    ],
)
def test_type_check(value, value_type, ok):
    assert (value_type(value) is None) is ok


def test_a_wrong_type_says_what_was_expected():
    assert SIZE_OR_AUTO("x") == "expected a whole number from 0 to 1000 or 'auto', got 'x'"
