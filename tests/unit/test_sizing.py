"""Memory sizing rules of the base role."""

import pytest

from roles.base import sizing
from roles.base.config import swap_size_mib
from roles.base.settings import BaseSettings
from roles.common.names import HostSpec


@pytest.mark.parametrize(
    "memory_gib, expected_mib",
    [
        (128, 12 * 1024),  # sqrt(128) = 11.3 -> 12 GiB, under the 25.6 GiB cap
        (64, 8 * 1024),
        (16, 3276),  # sqrt rule says 4 GiB; 20 % of 16 GiB caps it at 3276 MiB
        (6, 1228),
        (1, 204),
    ],
)
def test_auto_swap_is_sqrt_of_ram_capped_at_a_fifth(memory_gib, expected_mib):
    assert sizing.auto_swap_mib(memory_gib) == expected_mib
    assert sizing.auto_swap_mib(memory_gib) <= sizing.swap_cap_mib(memory_gib)


def test_explicit_swap_size_wins_over_auto():
    spec = HostSpec("h", "10.0.0.1", "backend", 128, 16)
    assert swap_size_mib(BaseSettings(swap_size_mib=2048), spec) == 2048
    assert swap_size_mib(BaseSettings(swap_size_mib=0), spec) == 0
    assert swap_size_mib(BaseSettings(), spec) == 12 * 1024


@pytest.mark.parametrize(
    "memory_gib, model_gib, reserve_gib, room_gib",
    [
        (128, 45, 4, 128 - 54 - 4),  # the reference backend: 70 GiB could go to a pool
        (16, 0, 4, 12),  # a frontend holds no model
        (64, 50, 4, -0.0 + 64 - 60 - 4),
    ],
)
def test_hugetlb_room_leaves_the_model_its_overhead(memory_gib, model_gib, reserve_gib, room_gib):
    assert sizing.hugetlb_room_gib(memory_gib, model_gib, reserve_gib) == pytest.approx(room_gib)


def test_hugetlb_pool_is_counted_in_2_mib_pages():
    assert sizing.hugetlb_pages(0) == 0
    assert sizing.hugetlb_pages(1024) == 512
    assert sizing.hugetlb_pages(1025) == 512
