"""Each path's chats, measured once per session (conftest.py), against the site's targets (``latency_*``) with its
noise margin (0 on a real site); a path that misses is measured once more before it fails.

Every test runs once per path ("gateway", "backend"); a figure that could not be computed (every chat failed)
fails the test that needs it rather than passing unseen.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.stats import chats_with_slow_gaps, slowest_ttfts


def _first_failures(measured, limit: int = 3) -> str:
    messages = Counter(f"{c['error']}: {c['message']}" for c in measured.chats if "error" in c)
    return "; ".join(f"{message} (x{n})" for message, n in messages.most_common(limit))


def test_no_chat_fails(measured):
    """Every stream answered 200, carried content and ended with [DONE], within the probe's timeout."""
    s = measured.summary
    assert s["errors"] == 0, f"{s['errors']} of {s['count']} chats failed: {_first_failures(measured)}"


def test_no_chat_is_cut_short(measured):
    s = measured.summary
    counts = sorted(c["tokens"] for c in measured.chats if "error" not in c)
    assert s["short"] == 0, (
        f"{s['short']} chats streamed fewer than {measured.expected_tokens} content chunks (chunk counts: {counts})"
    )


def test_ttft_p99_meets_the_target(measured, site):
    target = site.latency.allowed()["ttft_p99_s"]
    p99 = measured.summary["ttft_p99_s"]
    assert p99 is not None, f"no chat answered: {_first_failures(measured)}"
    assert p99 <= target, (
        f"TTFT p99 {p99 * 1000:.1f} ms > {target * 1000:.1f} ms (target and noise margin); slowest of the"
        f" {len(measured.chats)} chats (numbered in the order they finished): {slowest_ttfts(measured.chats)}"
    )


def test_inter_token_p99_meets_the_target(measured, site):
    target = site.latency.allowed()["inter_token_p99_s"]
    p99 = measured.summary["inter_token_p99_s"]
    assert p99 is not None, "no chat streamed two chunks: no gap to measure"
    assert p99 <= target, (
        f"inter-token p99 {p99 * 1000:.1f} ms > {target * 1000:.1f} ms (target and noise margin); chats (numbered in"
        f" the order they finished) with gaps over it, their slowest gap x how many:"
        f" {chats_with_slow_gaps(measured.chats, target)}"
    )


def test_decode_speed_meets_the_target(measured, site):
    if not site.latency.tokens_per_second:
        pytest.skip("no decode floor: latency_tokens_per_second is 0, or 'auto' on a site with a backend whose device"
                    " class has none (cpu; docs/operating.md, Decode floors): set it in the inventory")  # fmt: skip
    target = site.latency.allowed()["tokens_per_second_median"]
    median = measured.summary["tokens_per_second_median"]
    assert median is not None, "no chat streamed two chunks: no decode speed to measure"
    assert median >= target, f"median decode speed {median:.1f} tokens/s < {target:g} (target and noise margin)"
