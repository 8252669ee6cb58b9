"""Latency figures of streamed chats, as the latency suite and the benchmarks report them.

A chat is one record as tests/support/chats.py returns it: ``{"ttft_s", "inter_token_s", "tokens", "duration_s"}``,
or ``{"error", "message"}`` for a chat that failed.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile: always one of ``values``, so the p99 of 20 chats is the slowest one, not a blend."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:  # also refuses NaN
        raise ValueError(f"percentile must be within 0-100, got {q!r}")
    # Rounded first: 0.29 * 100 is 28.999999999999996 in floating point, and the rank must not move with that.
    rank = math.ceil(round(q * len(ordered) / 100, 9))
    return ordered[max(rank, 1) - 1]


def tokens_per_second(chat: Mapping[str, Any]) -> float | None:
    """Decode speed of one chat, as the probe reports it: the first token's wait is TTFT's business."""
    span = sum(chat["inter_token_s"])
    if chat["tokens"] < 2 or span <= 0:
        return None
    return (chat["tokens"] - 1) / span


def summarize(results: Sequence[Mapping[str, Any]], expected_tokens: int | None = None) -> dict[str, Any]:
    """Counts and latency figures of a batch of chats; a figure with nothing to compute it from is None.

    Inter-token figures pool every gap of every chat: one stall anywhere must show in the p99. ``short`` counts the
    chats that streamed fewer than ``expected_tokens`` content chunks (None when nothing was expected).
    """
    chats = [r for r in results if "error" not in r]
    failed = [r for r in results if "error" in r]
    ttfts = [r["ttft_s"] for r in chats]
    gaps = [gap for r in chats for gap in r["inter_token_s"]]
    rates = [rate for r in chats if (rate := tokens_per_second(r)) is not None]
    return {
        "count": len(results),
        "errors": len(failed),
        "error_reasons": dict(Counter(r["error"] for r in failed)),
        "ttft_p50_s": percentile(ttfts, 50) if ttfts else None,
        "ttft_p99_s": percentile(ttfts, 99) if ttfts else None,
        "inter_token_p50_s": percentile(gaps, 50) if gaps else None,
        "inter_token_p99_s": percentile(gaps, 99) if gaps else None,
        "tokens_per_second_median": statistics.median(rates) if rates else None,
        "short": None if expected_tokens is None else sum(1 for r in chats if r["tokens"] < expected_tokens),
    }


def bench_figures(chats: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts, and TTFT and inter-token median and p99, of a batch of chats, as the benchmarks report them; a figure
    with nothing to compute it from is None.

    The median is statistics.median's (the mean of the middle two of an even count), as the benchmarks' recorded
    figures were computed; summarize's p50 is nearest-rank.
    """
    answered = [c for c in chats if "error" not in c]
    ttfts = [c["ttft_s"] for c in answered]
    gaps = [gap for c in answered for gap in c["inter_token_s"]]
    return {
        "chats": len(chats),
        "errors": len(chats) - len(answered),
        "ttft_median_s": statistics.median(ttfts) if ttfts else None,
        "ttft_p99_s": percentile(ttfts, 99) if ttfts else None,
        "inter_token_median_s": statistics.median(gaps) if gaps else None,
        "inter_token_p99_s": percentile(gaps, 99) if gaps else None,
    }


def slowest_ttfts(chats: Sequence[Mapping[str, Any]], limit: int = 3) -> str:
    """The slowest chats by TTFT, numbered in the order they finished (with concurrency 1, the order they ran):
    one outlier reads differently from a slow path."""
    ttfts = [(c["ttft_s"], n) for n, c in enumerate(chats, 1) if "error" not in c]
    return ", ".join(f"#{n} {ttft * 1000:.0f} ms" for ttft, n in sorted(ttfts, reverse=True)[:limit])


def chats_with_slow_gaps(chats: Sequence[Mapping[str, Any]], threshold_s: float, limit: int = 5) -> str:
    """Chats with gaps over ``threshold_s``, numbered as in slowest_ttfts: each one's slowest gap and how many."""
    slow = [
        f"#{n} {max(c['inter_token_s']) * 1000:.0f} ms x{sum(gap > threshold_s for gap in c['inter_token_s'])}"
        for n, c in enumerate(chats, 1)
        if "error" not in c and c["inter_token_s"] and max(c["inter_token_s"]) > threshold_s
    ]
    return ", ".join(slow[:limit]) + (f" and {len(slow) - limit} more" if len(slow) > limit else "")


def missed(summary: dict[str, Any], targets) -> list[str]:
    """The figures of a path past their target and the site's noise margin (latency_noise_margin_percent)."""
    allowed = targets.allowed()
    late = [name for name in ("ttft_p99_s", "inter_token_p99_s") if (summary[name] or 0) > allowed[name]]
    rate = summary["tokens_per_second_median"]
    slow = rate is not None and rate < allowed["tokens_per_second_median"]
    return late + ["tokens_per_second_median"] * slow


def headroom(summary: dict[str, Any], targets) -> str:
    """How far each figure is inside its target, in % of the target: the margin a check passed by."""
    figures = (
        ("TTFT p99", summary["ttft_p99_s"], targets.ttft_p99_s, 1),
        ("ITL p99", summary["inter_token_p99_s"], targets.inter_token_p99_s, 1),
        ("tokens/s", summary["tokens_per_second_median"], targets.tokens_per_second, -1),
    )
    return ", ".join(
        f"{name} {sign * (target - value) / target * 100:+.0f} %" for name, value, target, sign in figures
        if value is not None and target
    )  # fmt: skip


def aggregate_tokens_per_second(chats: Sequence[Mapping[str, Any]], concurrency: int) -> float | None:
    """Tokens a path streams per second with ``concurrency`` chats kept in flight: N x the answered chats' tokens /
    the sum of their durations, which is the batches' time without the start-up around them. None if nothing was
    answered."""
    answered = [c for c in chats if "error" not in c]
    busy_s = sum(c["duration_s"] for c in answered)
    return concurrency * sum(c["tokens"] for c in answered) / busy_s if busy_s > 0 else None


def at_once(single: Sequence[Mapping[str, Any]], batch: Sequence[Mapping[str, Any]], concurrency: int) -> dict:
    """One path's figures with one chat at a time and with ``concurrency`` at once, and the two ratios that say
    whether people at once are served as well as one: TTFT p99 (N against 1) and aggregate tokens/s (N against 1).
    A ratio with nothing to compute it from is None."""
    cells = {}
    for n, chats in ((1, single), (concurrency, batch)):
        figures = bench_figures(chats)
        cells[n] = {
            "chats": figures["chats"],
            "errors": figures["errors"],
            "ttft_p50_s": figures["ttft_median_s"],
            "ttft_p99_s": figures["ttft_p99_s"],
            "inter_token_p99_s": figures["inter_token_p99_s"],
            "tokens_per_s": aggregate_tokens_per_second(chats, n),
        }
    one, many = cells[1], cells[concurrency]

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else a / b

    return {
        "cells": cells,
        "ttft_p99_ratio": ratio(many["ttft_p99_s"], one["ttft_p99_s"]),
        "tokens_per_s_ratio": ratio(many["tokens_per_s"], one["tokens_per_s"]),
    }


def at_once_verdicts(figures: dict, concurrency: int, targets, margin: bool = True) -> list[tuple[str, bool]]:
    """``at_once``'s figures against the site's targets for people at once (latency_at_once_*), each as (what was
    held and measured, holds). ``margin`` applies the site's noise margin, as the latency suite does; a benchmark
    reports against the bare targets."""
    factor = targets.noise_margin_percent / 100 if margin else 0.0
    many = figures["cells"][concurrency]
    ttft_bound = targets.at_once_ttft_p99_ratio * (1 + factor)
    tokens_bound = targets.at_once_tokens_per_second_ratio * (1 - factor)
    gap_bound = targets.at_once_inter_token_p99_s * (1 + factor)
    ttft, tokens, gap = figures["ttft_p99_ratio"], figures["tokens_per_s_ratio"], many["inter_token_p99_s"]
    failed = sum(cell["errors"] for cell in figures["cells"].values())

    def shown(value: float | None, unit: str = "x") -> str:
        if value is None:
            return "nothing measured"
        return f"{value * 1000:.1f} ms" if unit == "ms" else f"{value:.2f}x"

    return [
        (f"no chat fails: {failed} failed", failed == 0),
        (
            f"TTFT p99 at {concurrency} <= {ttft_bound:.2f}x one chat's: {shown(ttft)}",
            ttft is not None and ttft <= ttft_bound,
        ),
        (
            f"inter-token p99 at {concurrency} <= {gap_bound * 1000:.1f} ms: {shown(gap, 'ms')}",
            gap is not None and gap <= gap_bound,
        ),
        (
            f"tokens/s at {concurrency} >= {tokens_bound:.2f}x one chat's: {shown(tokens)}",
            tokens is not None and tokens >= tokens_bound,
        ),
    ]
