"""The latency suite's and the path benchmark's figures: nearest-rank percentiles and batch summaries."""

from __future__ import annotations

import math

import pytest

from roles.site.settings import LatencyTargets
from tests.support.stats import (
    aggregate_tokens_per_second,
    at_once,
    at_once_verdicts,
    chats_with_slow_gaps,
    headroom,
    missed,
    percentile,
    slowest_ttfts,
    summarize,
    tokens_per_second,
)


def chat(ttft_s: float, gaps: list[float]) -> dict:
    return {"ttft_s": ttft_s, "inter_token_s": gaps, "tokens": len(gaps) + 1, "duration_s": ttft_s + sum(gaps)}


def failure(reason: str) -> dict:
    return {"error": reason, "message": f"{reason} happened"}


@pytest.mark.parametrize(
    "q, expected",
    [(0, 1), (1, 1), (10, 1), (10.1, 2), (50, 5), (51, 6), (90, 9), (99, 10), (100, 10)],
)
def test_percentile_is_the_nearest_rank(q, expected):
    assert percentile(range(1, 11), q) == expected


def test_percentile_does_not_care_about_input_order():
    assert percentile([5.0, 1.0, 4.0, 2.0, 3.0], 50) == 3.0


def test_percentile_is_always_one_of_the_values():
    values = [0.1, 0.2, 0.4]
    assert {percentile(values, q) for q in range(101)} <= set(values)


def test_the_p99_of_a_hundred_values_is_the_99th_not_the_worst():
    values = list(range(1, 101))
    assert percentile(values, 99) == 99
    assert percentile(values, 29) == 29  # 0.29 * 100 is 28.999999999999996 in floating point


def test_the_p99_of_twenty_values_is_the_worst():
    assert percentile(range(20), 99) == 19


def test_percentile_of_one_value_is_that_value():
    assert percentile([0.25], 0) == percentile([0.25], 50) == percentile([0.25], 100) == 0.25


def test_percentile_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


@pytest.mark.parametrize("q", [-1, 100.5, math.nan])
def test_percentile_outside_0_to_100_is_an_error(q):
    with pytest.raises(ValueError, match="0-100"):
        percentile([1.0], q)


def test_percentile_takes_any_iterable():
    assert percentile((x / 10 for x in range(10)), 100) == 0.9


def test_tokens_per_second_leaves_the_first_token_out():
    assert tokens_per_second(chat(5.0, [0.1, 0.1, 0.2, 0.1])) == pytest.approx(4 / 0.5)


@pytest.mark.parametrize("gaps", [[], [0.0, 0.0]])
def test_tokens_per_second_needs_a_measurable_span(gaps):
    assert tokens_per_second(chat(0.1, gaps)) is None


def test_summary_of_known_chats():
    chats = [chat(0.1 * i, [0.01 * i, 0.02 * i]) for i in range(1, 11)]
    summary = summarize(chats, expected_tokens=3)
    assert summary["count"] == 10
    assert summary["errors"] == 0
    assert summary["error_reasons"] == {}
    assert summary["ttft_p50_s"] == pytest.approx(0.5)
    assert summary["ttft_p99_s"] == pytest.approx(1.0)
    # 20 gaps: 0.01..0.10 and 0.02..0.20; the 10th smallest is 0.07, the 20th the largest.
    assert summary["inter_token_p50_s"] == pytest.approx(0.07)
    assert summary["inter_token_p99_s"] == pytest.approx(0.2)
    # Chat i decodes 2 tokens in 0.03 * i s: the median of 2/(0.03 i) over i = 1..10 lies between i = 5 and 6.
    assert summary["tokens_per_second_median"] == pytest.approx((2 / 0.15 + 2 / 0.18) / 2)
    assert summary["short"] == 0


def test_inter_token_figures_pool_every_gap_of_every_chat():
    """Stalls in one chat of ten still reach the p99: 10 of 990 gaps are over 1 %."""
    chats = [chat(0.1, [0.01] * 99) for _ in range(9)] + [chat(0.1, [0.01] * 89 + [2.0] * 10)]
    summary = summarize(chats)
    assert summary["inter_token_p50_s"] == 0.01
    assert summary["inter_token_p99_s"] == 2.0


def test_failed_chats_are_counted_by_reason_and_left_out_of_the_figures():
    summary = summarize([chat(0.2, [0.05]), failure("timeout"), failure("http_503"), failure("timeout")])
    assert summary["count"] == 4
    assert summary["errors"] == 3
    assert summary["error_reasons"] == {"timeout": 2, "http_503": 1}
    assert summary["ttft_p50_s"] == summary["ttft_p99_s"] == 0.2
    assert summary["inter_token_p99_s"] == 0.05


def test_a_batch_of_failures_has_no_figures():
    summary = summarize([failure("connection")] * 3, expected_tokens=16)
    assert summary["errors"] == 3
    for key in ("ttft_p50_s", "ttft_p99_s", "inter_token_p50_s", "inter_token_p99_s", "tokens_per_second_median"):
        assert summary[key] is None
    assert summary["short"] == 0  # a failed chat is an error, not a short one


def test_an_empty_batch_summarizes_to_nothing():
    summary = summarize([])
    assert summary["count"] == summary["errors"] == 0
    assert summary["ttft_p99_s"] is None
    assert summary["short"] is None


def test_short_counts_chats_with_fewer_chunks_than_expected():
    chats = [chat(0.1, [0.01] * 15), chat(0.1, [0.01] * 9), chat(0.1, [0.01] * 16), chat(0.1, [])]
    assert summarize(chats, expected_tokens=16)["short"] == 2
    assert summarize(chats, expected_tokens=2)["short"] == 1
    assert summarize(chats)["short"] is None


def test_single_token_chats_have_a_ttft_but_no_speed():
    summary = summarize([chat(0.3, []), chat(0.4, [])])
    assert summary["ttft_p99_s"] == 0.4
    assert summary["inter_token_p99_s"] is None
    assert summary["tokens_per_second_median"] is None


def test_failure_messages_name_the_slow_chats_in_run_order():
    chats = [
        {"ttft_s": 0.5, "inter_token_s": [0.005, 0.006], "tokens": 3, "duration_s": 0.6},
        {"error": "timeout", "message": "no first token in 60 s"},
        {"ttft_s": 2.7, "inter_token_s": [0.073, 0.005, 0.045], "tokens": 4, "duration_s": 2.9},
        {"ttft_s": 0.9, "inter_token_s": [0.041], "tokens": 2, "duration_s": 1.0},
        {"ttft_s": 0.6, "inter_token_s": [], "tokens": 1, "duration_s": 0.6},
    ]
    assert slowest_ttfts(chats, limit=2) == "#3 2700 ms, #4 900 ms"
    assert chats_with_slow_gaps(chats, 0.04) == "#3 73 ms x2, #4 41 ms x1"
    assert chats_with_slow_gaps(chats, 0.04, limit=1) == "#3 73 ms x2 and 1 more"
    assert chats_with_slow_gaps(chats, 0.1) == ""


def figures(ttft: float, gap: float, rate: float | None) -> dict:
    return {"ttft_p99_s": ttft, "inter_token_p99_s": gap, "tokens_per_second_median": rate}


def test_a_real_sites_targets_have_no_noise_margin():
    targets = LatencyTargets(tokens_per_second=25.0)  # the decode floor's default is per device class (Site.latency)
    assert targets.noise_margin_percent == 0
    assert targets.allowed() == {"ttft_p99_s": 0.7, "inter_token_p99_s": 0.04, "tokens_per_second_median": 25.0}
    assert missed(figures(0.7, 0.04, 25.0), targets) == []  # on target is not a miss
    assert missed(figures(0.71, 0.041, 24.9), targets) == [
        "ttft_p99_s",
        "inter_token_p99_s",
        "tokens_per_second_median",
    ]


@pytest.mark.parametrize(
    "measured, misses",
    [
        (figures(1.1, 0.044, 22.5), []),  # within 10 %: noise
        (figures(1.11, 0.0, 30.0), ["ttft_p99_s"]),
        (figures(0.5, 0.0441, 30.0), ["inter_token_p99_s"]),
        (figures(0.5, 0.01, 22.4), ["tokens_per_second_median"]),
        (figures(None, None, None), []),  # nothing measured: the tests say so, not this
    ],
)
def test_the_noise_margin_widens_each_bound_by_its_percentage(measured, misses):
    targets = LatencyTargets(ttft_p99_s=1.0, inter_token_p99_s=0.04, tokens_per_second=25.0, noise_margin_percent=10)
    assert missed(measured, targets) == misses


def test_headroom_is_the_share_of_the_target_left_and_negative_past_it():
    targets = LatencyTargets(ttft_p99_s=1.0, inter_token_p99_s=0.04, tokens_per_second=20.0)
    assert headroom(figures(0.25, 0.05, 30.0), targets) == "TTFT p99 +75 %, ITL p99 -25 %, tokens/s +50 %"
    assert headroom(figures(0.5, None, None), targets) == "TTFT p99 +50 %"


def test_aggregate_tokens_per_second_is_n_times_the_answered_tokens_over_their_time():
    chats = [chat(0.5, [0.1] * 9), chat(0.5, [0.1] * 9), failure("timeout")]  # 10 tokens in 1.4 s each
    assert aggregate_tokens_per_second(chats, 2) == pytest.approx(2 * 20 / 2.8)
    assert aggregate_tokens_per_second([failure("refused")], 8) is None


def test_at_once_compares_n_chats_at_once_with_one_at_a_time():
    single = [chat(0.5, [0.02] * 9) for _ in range(8)]  # 10 tokens in 0.68 s
    batch = [chat(1.0 + i / 10, [0.03] * 9) for i in range(8)]  # TTFT up to 1.7 s
    figures = at_once(single, batch, 8)
    assert figures["cells"][1]["ttft_p99_s"] == 0.5
    assert figures["cells"][8]["ttft_p99_s"] == pytest.approx(1.7)
    assert figures["ttft_p99_ratio"] == pytest.approx(1.7 / 0.5)
    assert figures["cells"][8]["inter_token_p99_s"] == pytest.approx(0.03)
    one = 10 / 0.68
    many = 8 * 80 / sum(1.0 + i / 10 + 0.27 for i in range(8))
    assert figures["tokens_per_s_ratio"] == pytest.approx(many / one)


def test_at_once_has_no_ratio_when_a_side_answered_nothing():
    figures = at_once([failure("refused")], [chat(0.5, [0.02])], 8)
    assert figures["ttft_p99_ratio"] is None and figures["tokens_per_s_ratio"] is None
    assert figures["cells"][1]["errors"] == 1


AT_ONCE = LatencyTargets(inter_token_p99_s=0.04, tokens_per_second=25.0, noise_margin_percent=10)


def verdicts_of(single, batch, margin=True):
    return dict(
        (what.split(":")[0], holds) for what, holds in at_once_verdicts(at_once(single, batch, 8), 8, AT_ONCE, margin)
    )


def test_at_once_verdicts_hold_for_people_served_as_one():
    single = [chat(0.5, [0.02] * 9) for _ in range(8)]
    batch = [chat(0.6, [0.021] * 9) for _ in range(8)]
    verdicts = verdicts_of(single, batch)
    assert all(verdicts.values()), verdicts


def test_at_once_verdicts_miss_a_queue_a_stutter_a_flat_rate_and_a_failure():
    single = [chat(0.5, [0.02] * 9) for _ in range(8)]
    batch = [chat(0.5 * (i + 1), [0.02 * 8] * 9) for i in range(7)] + [failure("timeout")]
    verdicts = verdicts_of(single, batch)
    assert verdicts == {
        "no chat fails": False,
        "TTFT p99 at 8 <= 3.30x one chat's": False,
        "inter-token p99 at 8 <= 44.0 ms": False,
        "tokens/s at 8 >= 1.80x one chat's": False,
    }


def test_at_once_verdicts_apply_the_noise_margin_only_when_asked():
    single = [chat(0.5, [0.02] * 9) for _ in range(8)]
    batch = [chat(1.6, [0.042] * 9) for _ in range(8)]  # 3.2x and 42 ms: inside the margin, past the targets
    assert verdicts_of(single, batch)["TTFT p99 at 8 <= 3.30x one chat's"]
    assert verdicts_of(single, batch)["inter-token p99 at 8 <= 44.0 ms"]
    bare = verdicts_of(single, batch, margin=False)
    assert not bare["TTFT p99 at 8 <= 3.00x one chat's"] and not bare["inter-token p99 at 8 <= 40.0 ms"]
