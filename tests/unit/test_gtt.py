"""The GPU's GTT on unified memory: its size (auto or given), the refusals before any host is touched, and the
memory budget that counts it in place of the model's share of RAM."""

from __future__ import annotations

import pytest

from roles.model_server.config import auto_gtt_gib, gtt_modprobe_line
from roles.model_server.settings import ModelServerSettings
from tests.support.sites import problems_of, site_with, with_change

RADV_BACKEND = {"model_server_compute": "vulkan"}  # the driver defaults to radv


def refused(**data) -> tuple[set, str]:
    return problems_of(with_change(lambda h: h["back"][1].update(data)))


def test_auto_is_the_model_its_kv_cache_and_a_tenth_in_whole_gib():
    # The good site's backend: 45 GiB model, 4 slots x 32768 tokens x 24 KiB = 3 GiB of KV cache: 48 + 4.8.
    assert site_with(back=RADV_BACKEND).model_server_config("back").gtt_gib == 53


@pytest.mark.parametrize(
    "changes, memory_gib, expected",
    [
        ({"model_size_gib": 45.0}, 128, 53),
        ({"model_size_gib": 1.0, "parallel_slots": 1, "context_tokens": 4096}, 128, 4),  # 1.09 GiB + the 2 GiB floor
        ({"model_size_gib": 100.0}, 128, 114),  # 103 GiB + 10.3
        ({"model_size_gib": 100.0}, 112, 108),  # capped: 112 GiB RAM - 4 GiB reserve
    ],
)
def test_auto_gtt_has_a_floor_and_a_ceiling(changes, memory_gib, expected):
    assert auto_gtt_gib(ModelServerSettings(**changes), memory_gib, 4.0) == expected


@pytest.mark.parametrize(
    "back",
    [
        {},  # compute cpu: the model is in RAM
        {**RADV_BACKEND, "model_server_vulkan_driver": "lavapipe"},  # lavapipe's device memory is the process' RAM
    ],
)
def test_no_gtt_where_the_model_is_not_in_one(back):
    assert site_with(back=back).model_server_config("back").gtt_gib == 0


def test_a_given_gtt_is_used_as_given():
    assert site_with(back={**RADV_BACKEND, "model_server_gtt_gib": 104}).model_server_config("back").gtt_gib == 104


def test_a_gtt_larger_than_ram_less_the_reserve_is_refused_with_both_numbers():
    problems, message = refused(**RADV_BACKEND, model_server_gtt_gib=125)
    assert problems == {("back", "model_server_gtt_gib")}
    assert "125 GiB is more than this host's 128 GiB RAM" in message and "= 124 GiB" in message


def test_a_gtt_the_model_and_kv_cache_do_not_fit_is_refused_with_both_numbers():
    problems, message = refused(**RADV_BACKEND, model_server_gtt_gib=47)
    assert problems == {("back", "model_server_gtt_gib")}
    assert "need 48.0 GiB of GTT, more than this host's 47 GiB" in message
    assert "4 slot(s) x 32768 tokens x 24 KiB: 3.0 GiB" in message


def test_an_auto_gtt_capped_below_the_model_blames_the_model():
    problems, message = refused(**RADV_BACKEND, hw_memory_gib=48)
    assert problems == {("back", "model_server_model_size_gib")}
    assert "need 48.0 GiB of GTT, more than this host's 44 GiB (auto: at most 48 GiB RAM - 4 GiB reserve)" in message


def test_the_budget_on_a_gpu_host_is_the_gtt_not_the_model_against_ram():
    # 64 GiB RAM, a 48 GiB model and 3 GiB of KV cache: in RAM the model's 20 % overhead leaves the KV cache no room;
    # in GTT the model, its KV cache and the 10 % margin (57 GiB) fit under 64 - 4 GiB.
    tight = {"hw_memory_gib": 64, "model_server_model_size_gib": 48}
    assert refused(**tight)[0] == {("back", "model_server_parallel_slots")}
    assert site_with(back={**tight, **RADV_BACKEND}).model_server_config("back").gtt_gib == 57


def test_a_hugetlb_pool_beside_a_gtt_gets_what_the_gtt_and_the_reserve_leave():
    gpu = {**RADV_BACKEND, "model_server_gtt_gib": 100}
    site_with(back={**gpu, "base_hugetlb_pool_mib": 24 * 1024})  # 128 - 100 - 4 = 24 GiB
    problems, message = refused(**gpu, base_hugetlb_pool_mib=25 * 1024)
    assert problems == {("back", "base_hugetlb_pool_mib")}
    assert "128 GiB RAM - GTT 100 GiB" in message and "leaves 24.0 GiB" in message


@pytest.mark.parametrize(
    "data, only, chosen",
    [
        ({}, "vulkan", "model_server_compute is cpu"),
        ({**RADV_BACKEND, "model_server_vulkan_driver": "lavapipe"}, "radv", "model_server_vulkan_driver is lavapipe"),
    ],
)
def test_a_gtt_is_refused_where_nothing_reads_it(data, only, chosen):
    problems, message = refused(**data, model_server_gtt_gib=64)
    assert problems == {("back", "model_server_gtt_gib")}
    assert f"is read by {only} only; this host's {chosen}" in message


@pytest.mark.parametrize("gib, pages", [(1, 262144), (53, 13893632), (104, 27262976)])
def test_the_modprobe_line_gives_ttm_the_pages_of_the_gtt(gib, pages):
    assert gtt_modprobe_line(gib) == f"options ttm pages_limit={pages} page_pool_size={pages}"
