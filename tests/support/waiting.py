"""Waiting for what a site shows only after a while: a condition polled until it holds, or the test fails naming it."""

from __future__ import annotations

import time

import pytest


def wait_for(condition, timeout_s, what):
    """Poll ``condition`` (returns a true value when met) once a second; fail naming ``what``."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(1)
    pytest.fail(f"{what}: not within {timeout_s} s (last: {last!r})")


def seconds_until(condition, timeout_s: float, what: str) -> float:
    """Seconds until ``condition()`` held, polled every half second; fails naming ``what`` after the timeout."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"{what}: not within {timeout_s:.0f} s"
        time.sleep(0.5)
    return time.monotonic() - started
