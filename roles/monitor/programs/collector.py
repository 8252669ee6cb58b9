"""Latency probe of the model's OpenAI-compatible API, exposed as a Prometheus custom collector.

The probe runs on its own clock, not on each scrape: the model server has a single slot, so scrape-triggered
probing would multiply its load by the number of scrapers and let a slow scrape queue behind real users.
Scrapes only read what the last probes recorded.

Run as ``python -m roles.monitor.programs.collector CONFIG.json`` (on a host: ``python3 collector.py CONFIG.json``
beside stream.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

try:
    from roles.monitor.programs.stream import (
        ProbeError,
        ProbeResult,
        Target,
        client_tls_context,
        probe_round,
        stream_chat,
    )
except ImportError:  # on a host: installed beside stream.py, outside this repository's packages
    from stream import (  # type: ignore[no-redef]
        ProbeError,
        ProbeResult,
        Target,
        client_tls_context,
        probe_round,
        stream_chat,
    )

log = logging.getLogger(__name__)

# TTFT spans queueing behind a user's request and prompt processing: tens of ms on a cached prompt up to a minute
# behind a long answer; 0.7 s is where a chat starts to feel sluggish.
TTFT_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.7, 1, 2, 5, 10, 30, 60, math.inf)
# 40 ms between tokens (25 tokens/s) is the target, hence a bucket edge there.
INTER_TOKEN_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 1, math.inf)

# Reasons that exist before they first happen, so rate() and increase() see the first error as a step from 0.
KNOWN_ERROR_REASONS = ("timeout", "connection", "protocol")


class _Histogram:
    """Bucket counts kept per bucket (not cumulative), so one observation touches one counter."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # first bound >= value: Prometheus' le is inclusive
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        cumulative, result = 0, []
        for bound, count in zip(self.bounds, self.counts, strict=True):
            cumulative += count
            result.append((floatToGoString(bound), cumulative))  # "1.0", "+Inf": as prometheus_client's Histogram
        return result


@dataclass
class _PathState:
    ttft: _Histogram = field(default_factory=lambda: _Histogram(TTFT_BUCKETS))
    inter_token: _Histogram = field(default_factory=lambda: _Histogram(INTER_TOKEN_BUCKETS))
    requests: dict[str, int] = field(default_factory=lambda: {"success": 0, "error": 0})
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KNOWN_ERROR_REASONS, 0))
    # None until known: an absent gauge says "no data" where a 0 would claim a measurement.
    success: int | None = None
    duration_s: float | None = None
    tokens_per_second: float | None = None
    last_success_s: float | None = None


class LatencyProbeCollector:
    """Probes on demand (``probe_once``) and hands the recorded state to Prometheus on scrape (``collect``).

    Two locks: one serialises probes, because the model server has one slot and two probes would measure each
    other; the other guards the recorded state only briefly, so a scrape never waits for a probe in flight.
    ``round_lock_file``, when given, is the file lock a latency check on this host holds while it measures: a round
    that finds it held is skipped, and counted, rather than queued beside the check's chats.
    """

    def __init__(
        self,
        targets: Sequence[Target],
        probe: Callable[[Target], ProbeResult] = stream_chat,
        clock: Callable[[], float] = time.time,
        round_lock_file: str | None = None,
    ) -> None:
        names = [target.name for target in targets]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"need at least one target and unique names, got {names}")
        self._targets = tuple(targets)
        self._probe = probe
        self._clock = clock
        self._round_lock_file = round_lock_file
        self._rounds_skipped = 0
        self._probe_lock = threading.Lock()
        self._state_lock = threading.Lock()
        # Every path exists from the start, so alert rules see zero-valued series before the first probe.
        self._state = {name: _PathState() for name in names}

    def probe_once(self) -> bool:
        """Probe each target in turn, never two at once, even when called from several threads; False when the
        round was skipped for a latency check."""
        with self._probe_lock, probe_round(self._round_lock_file) as ours:
            if not ours:
                with self._state_lock:
                    self._rounds_skipped += 1
                log.info("a latency check holds %s: round skipped", self._round_lock_file)
                return False
            for target in self._targets:
                self._probe_target(target)
            return True

    def _probe_target(self, target: Target) -> None:
        started = self._clock()
        try:
            result = self._probe(target)
        except ProbeError as error:
            self._record_error(target.name, error.reason, self._clock() - started)
            log.warning("probe of %s failed: %s", target.name, error)
        except Exception:
            # A bug must cost one sample, not the probe loop; "internal" keeps it visible on the dashboards.
            self._record_error(target.name, "internal", self._clock() - started)
            log.exception("probe of %s crashed", target.name)
        else:
            self._record_success(target.name, result, self._clock())

    def _record_success(self, name: str, result: ProbeResult, now: float) -> None:
        with self._state_lock:
            state = self._state[name]
            state.ttft.observe(result.ttft_s)
            for gap in result.inter_token_s:
                state.inter_token.observe(gap)
            state.requests["success"] += 1
            state.success = 1
            state.duration_s = result.duration_s
            # Kept from the last success: a failed probe says nothing about decode speed.
            state.tokens_per_second = result.tokens_per_second
            state.last_success_s = now

    def _record_error(self, name: str, reason: str, duration_s: float) -> None:
        with self._state_lock:
            state = self._state[name]
            state.requests["error"] += 1
            state.errors[reason] = state.errors.get(reason, 0) + 1
            state.success = 0
            state.duration_s = max(duration_s, 0.0)  # the wall clock may step back between the two readings

    def describe(self) -> Iterator[Metric]:
        """Sample-free families, so the registry can reject a name clash at registration, not at a scrape."""
        yield from _families().values()

    def collect(self) -> Iterator[Metric]:
        """Families built from the recorded state; cheap, never probes."""
        families = _families()
        with self._state_lock:
            families["rounds_skipped"].add_metric([], self._rounds_skipped)
            for path, state in self._state.items():
                families["ttft"].add_metric([path], state.ttft.buckets(), state.ttft.total)
                families["inter_token"].add_metric([path], state.inter_token.buckets(), state.inter_token.total)
                for result, count in state.requests.items():
                    families["requests"].add_metric([path, result], count)
                for reason, count in sorted(state.errors.items()):
                    families["errors"].add_metric([path, reason], count)
                for key, value in (
                    ("tokens_per_second", state.tokens_per_second),
                    ("duration", state.duration_s),
                    ("success", state.success),
                    ("last_success", state.last_success_s),
                ):
                    if value is not None:
                        families[key].add_metric([path], value)
        yield from families.values()


def _families() -> dict[str, Metric]:
    path = ["path"]
    return {
        "ttft": HistogramMetricFamily(
            "clawlan_probe_time_to_first_token_seconds",
            "Time from sending a streamed chat completion to its first content chunk.",
            labels=path,
        ),
        "inter_token": HistogramMetricFamily(
            "clawlan_probe_inter_token_seconds",
            "Time between successive content chunks of a streamed chat completion.",
            labels=path,
        ),
        "tokens_per_second": GaugeMetricFamily(
            "clawlan_probe_tokens_per_second",
            "Decode speed of the last successful probe: (chunks - 1) / (last chunk - first chunk).",
            labels=path,
        ),
        "duration": GaugeMetricFamily(
            "clawlan_probe_duration_seconds", "Duration of the last probe, connection included.", labels=path
        ),
        "success": GaugeMetricFamily("clawlan_probe_success", "1 if the last probe succeeded, else 0.", labels=path),
        "last_success": GaugeMetricFamily(
            "clawlan_probe_last_success_timestamp_seconds",
            "Unix time of the last successful probe.",
            labels=path,
        ),
        "requests": CounterMetricFamily(
            "clawlan_probe_requests_total", "Probe requests by result.", labels=["path", "result"]
        ),
        "errors": CounterMetricFamily(
            "clawlan_probe_errors_total", "Failed probe requests by reason.", labels=["path", "reason"]
        ),
        "rounds_skipped": CounterMetricFamily(
            "clawlan_probe_rounds_skipped_total", "Probe rounds skipped while a latency check held the round lock."
        ),
    }


def run_forever(collector: LatencyProbeCollector, interval_s: float, stop_event: threading.Event) -> None:
    """Probe every ``interval_s``, start to start, until ``stop_event`` is set.

    A round that overruns skips the ticks it missed instead of starting the next one at once: a slow or hanging
    server would otherwise get probes back to back, just when it can least afford them.
    """
    if not interval_s > 0:
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    next_start = time.monotonic()
    while not stop_event.is_set():
        collector.probe_once()
        now = time.monotonic()
        next_start += interval_s
        if next_start < now:
            next_start += math.ceil((now - next_start) / interval_s) * interval_s
        if stop_event.wait(next_start - now):
            return


def target_from_config(entry: Mapping[str, Any]) -> Target:
    """A target from one entry of the config's ``targets``; reads the secrets so nothing else has to."""
    headers = {}
    token = None
    if key_file := entry.get("api_key_file"):
        token = Path(key_file).read_text().strip()
        if not token:
            raise ValueError(f"target {entry['name']!r}: api_key_file {key_file} is empty")
    elif key_env := entry.get("api_key_env"):
        # From the unit's EnvironmentFile: the secret is in neither the config file nor the command line.
        token = os.environ.get(key_env, "").strip()
        if not token:
            raise ValueError(f"target {entry['name']!r}: environment variable {key_env} is not set")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return Target(
        name=entry["name"],
        url=entry["url"],
        model=entry["model"],
        headers=headers,
        ssl_context=client_tls_context(
            entry["url"], entry.get("ca_file"), entry.get("cert_file"), entry.get("key_file")
        ),
        max_tokens=int(entry.get("max_tokens", 16)),
        timeout_s=float(entry.get("timeout_s", 30.0)),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Serve /metrics and probe until SIGTERM (systemd's stop) or SIGINT."""
    argv = sys.argv if argv is None else argv
    if len(argv) != 2:
        raise SystemExit(f"usage: {argv[0]} CONFIG.json")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = json.loads(Path(argv[1]).read_text())
    collector = LatencyProbeCollector(
        [target_from_config(entry) for entry in config["targets"]], round_lock_file=config.get("round_lock_file")
    )
    # A fresh registry: /metrics shows the probe only, not this process' own Python and process metrics.
    registry = CollectorRegistry()
    registry.register(collector)
    start_http_server(int(config["port"]), config["listen_address"], registry=registry)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run_forever(collector, float(config["interval_s"]), stop)


if __name__ == "__main__":
    main()
