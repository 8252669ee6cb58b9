"""The latency probe: timings against a local fake model server, and the collector's bookkeeping without one."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.utils import floatToGoString

from roles.monitor.programs.collector import (
    INTER_TOKEN_BUCKETS,
    TTFT_BUCKETS,
    LatencyProbeCollector,
    ProbeError,
    ProbeResult,
    Target,
    run_forever,
    stream_chat,
    target_from_config,
)
from roles.monitor.programs.stream import probe_rounds_held

API_KEY = "s3cret"
REPO = Path(__file__).resolve().parents[2]
TTFT = "clawlan_probe_time_to_first_token_seconds"
ITL = "clawlan_probe_inter_token_seconds"


@dataclass
class FakeModelServer:
    """An OpenAI-compatible streaming endpoint whose timing and failures the test sets."""

    chunks: int = 5
    first_delay_s: float = 0.0  # after the role-only chunk, before the first content chunk
    gap_s: float = 0.0
    stall_s: float = 0.0  # before the response headers
    status: int = 200
    send_done: bool = True
    garbage: bool = False
    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    max_in_flight: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Set at teardown so handlers still pausing (timeout tests) finish at once instead of outliving the test.
    _released: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> FakeModelServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01})
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._released.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1/chat/completions"

    def pause(self, seconds: float) -> None:
        self._released.wait(seconds)

    def entered(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def left(self) -> None:
        with self._lock:
            self._in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked streaming, as llama.cpp-style servers answer
    disable_nagle_algorithm = True  # or the fake's own small writes would blur the timings under test

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake: FakeModelServer = self.server.fake  # type: ignore[attr-defined]
        fake.entered()
        try:
            self._answer(fake)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the probe gave up, as it should after a timeout
        finally:
            fake.left()

    def _answer(self, fake: FakeModelServer) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        fake.requests.append((dict(self.headers), body))
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            return self._plain(401)
        if fake.status != 200:
            return self._plain(fake.status)
        fake.pause(fake.stall_s)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})  # not a token
        self._chunk(b": keep-alive comment\n\n")
        fake.pause(fake.first_delay_s)
        for n in range(fake.chunks):
            if n:
                fake.pause(fake.gap_s)
            self._event({"choices": [{"index": 0, "delta": {"content": f" {n + 1}"}}]})
        if fake.garbage:
            self._chunk(b"data: {not json\n\n")
        self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
        if fake.send_done:
            self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _plain(self, status: int) -> None:
        body = b'{"error": "no"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _event(self, payload: dict[str, Any]) -> None:
        self._chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))  # one write per chunk: one segment on the wire


@pytest.fixture
def server():
    with FakeModelServer() as fake:
        yield fake


def target_of(server: FakeModelServer, name: str = "backend", key: str = API_KEY, timeout_s: float = 5.0) -> Target:
    return Target(
        name=name,
        url=server.url,
        model="test-model",
        headers={"Authorization": f"Bearer {key}"},
        max_tokens=16,
        timeout_s=timeout_s,
    )


def registry_of(collector: LatencyProbeCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def sample(registry: CollectorRegistry, name: str, path: str = "backend", **labels: str) -> float | None:
    return registry.get_sample_value(name, {"path": path, **labels})


def buckets(registry: CollectorRegistry, name: str, bounds: tuple[float, ...], path: str = "backend") -> list[float]:
    return [sample(registry, f"{name}_bucket", path, le=floatToGoString(bound)) for bound in bounds]


def test_streamed_completion_timings(server):
    server.first_delay_s, server.gap_s, server.chunks = 0.2, 0.05, 5
    results: list[ProbeResult] = []

    def recording_probe(target: Target) -> ProbeResult:
        results.append(stream_chat(target))
        return results[-1]

    collector = LatencyProbeCollector([target_of(server)], probe=recording_probe)
    registry = registry_of(collector)
    collector.probe_once()

    [result] = results
    assert result.ttft_s == pytest.approx(0.2, abs=0.04)
    assert result.tokens == 5
    assert len(result.inter_token_s) == 4
    assert all(gap == pytest.approx(0.05, abs=0.04) for gap in result.inter_token_s)
    assert result.duration_s >= result.ttft_s + sum(result.inter_token_s)
    assert result.tokens_per_second == pytest.approx(20, rel=0.2)

    assert sample(registry, f"{TTFT}_count") == 1
    assert sample(registry, f"{TTFT}_sum") == pytest.approx(result.ttft_s)
    assert sample(registry, f"{TTFT}_bucket", le="0.1") == 0
    assert sample(registry, f"{TTFT}_bucket", le="0.25") == 1
    assert sample(registry, f"{ITL}_count") == 4
    assert sample(registry, f"{ITL}_sum") == pytest.approx(sum(result.inter_token_s))
    assert sample(registry, f"{ITL}_bucket", le="0.16") == 4
    assert sample(registry, "clawlan_probe_tokens_per_second") == pytest.approx(result.tokens_per_second)
    assert sample(registry, "clawlan_probe_duration_seconds") == pytest.approx(result.duration_s)
    assert sample(registry, "clawlan_probe_success") == 1
    assert sample(registry, "clawlan_probe_last_success_timestamp_seconds") == pytest.approx(time.time(), abs=5)
    assert sample(registry, "clawlan_probe_requests_total", result="success") == 1
    assert sample(registry, "clawlan_probe_requests_total", result="error") == 0

    [(headers, body)] = server.requests
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert headers["Accept"] == "text/event-stream"
    assert body["stream"] is True
    assert body["max_tokens"] == 16
    assert body["model"] == "test-model"


@pytest.mark.parametrize(("status", "key", "reason"), [(500, API_KEY, "http_500"), (200, "wrong", "http_401")])
def test_http_errors(server, status, key, reason):
    server.status = status
    collector = LatencyProbeCollector([target_of(server, key=key)])
    registry = registry_of(collector)
    collector.probe_once()

    assert sample(registry, "clawlan_probe_success") == 0
    assert sample(registry, "clawlan_probe_errors_total", reason=reason) == 1
    assert sample(registry, "clawlan_probe_requests_total", result="error") == 1
    assert sample(registry, "clawlan_probe_requests_total", result="success") == 0
    assert sample(registry, f"{TTFT}_count") == 0
    assert sample(registry, "clawlan_probe_duration_seconds") < 1
    assert sample(registry, "clawlan_probe_last_success_timestamp_seconds") is None


@pytest.mark.parametrize("stall", ["before_headers", "mid_stream"])
def test_a_stalled_server_times_out(server, stall):
    if stall == "before_headers":
        server.stall_s = 10
    else:
        server.gap_s = 10
    timeout_s = 0.3
    collector = LatencyProbeCollector([target_of(server, timeout_s=timeout_s)])
    registry = registry_of(collector)

    started = time.monotonic()
    collector.probe_once()
    elapsed = time.monotonic() - started

    assert timeout_s * 0.9 < elapsed < timeout_s + 1
    assert sample(registry, "clawlan_probe_errors_total", reason="timeout") == 1
    assert sample(registry, "clawlan_probe_success") == 0
    assert sample(registry, "clawlan_probe_duration_seconds") == pytest.approx(elapsed, abs=0.1)


@pytest.mark.parametrize(
    "broken",
    [{"send_done": False}, {"chunks": 0}, {"garbage": True}],
    ids=["no_done", "no_content", "not_json"],
)
def test_broken_streams_are_protocol_errors(server, broken):
    for attribute, value in broken.items():
        setattr(server, attribute, value)
    with pytest.raises(ProbeError) as raised:
        stream_chat(target_of(server))
    assert raised.value.reason == "protocol"

    collector = LatencyProbeCollector([target_of(server)])
    registry = registry_of(collector)
    collector.probe_once()
    assert sample(registry, "clawlan_probe_errors_total", reason="protocol") == 1
    assert sample(registry, f"{ITL}_count") == 0


def test_refused_connection():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    target = Target("backend", f"http://127.0.0.1:{port}/v1/chat/completions", "m", timeout_s=2)
    with pytest.raises(ProbeError) as raised:
        stream_chat(target)
    assert raised.value.reason == "connection"


def test_zero_valued_series_before_any_probe():
    def never(target: Target) -> ProbeResult:
        raise AssertionError("no probe may run on a scrape")

    targets = [Target(name, f"http://127.0.0.1:9/{name}", "m") for name in ("gateway", "backend")]
    registry = registry_of(LatencyProbeCollector(targets, probe=never))

    for path in ("gateway", "backend"):
        assert buckets(registry, TTFT, TTFT_BUCKETS, path) == [0] * len(TTFT_BUCKETS)
        assert buckets(registry, ITL, INTER_TOKEN_BUCKETS, path) == [0] * len(INTER_TOKEN_BUCKETS)
        for histogram in (TTFT, ITL):
            assert sample(registry, f"{histogram}_count", path) == 0
            assert sample(registry, f"{histogram}_sum", path) == 0
        for result in ("success", "error"):
            assert sample(registry, "clawlan_probe_requests_total", path, result=result) == 0
        for reason in ("timeout", "connection", "protocol"):
            assert sample(registry, "clawlan_probe_errors_total", path, reason=reason) == 0
        # No measurement yet: the gauges are absent rather than a misleading 0.
        assert sample(registry, "clawlan_probe_success", path) is None
        assert sample(registry, "clawlan_probe_tokens_per_second", path) is None


def test_describe_guards_against_name_clashes():
    collector = LatencyProbeCollector([Target("backend", "http://127.0.0.1:9/", "m")])
    registry = registry_of(collector)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(LatencyProbeCollector([Target("gateway", "http://127.0.0.1:9/", "m")]))


def test_target_names_must_be_unique():
    with pytest.raises(ValueError, match="unique"):
        LatencyProbeCollector([Target("backend", "http://127.0.0.1:9/", "m")] * 2)


def test_one_probe_at_a_time(server):
    server.first_delay_s, server.gap_s, server.chunks = 0.05, 0.01, 3
    targets = [target_of(server, "gateway"), target_of(server, "backend")]

    # Control: without the collector, two threads do overlap at this server, so the assertion below can fail.
    run_together(lambda: stream_chat(targets[0]), lambda: stream_chat(targets[1]))
    assert server.max_in_flight == 2
    server.max_in_flight = 0
    server.requests.clear()

    collector = LatencyProbeCollector(targets)
    registry = registry_of(collector)
    run_together(collector.probe_once, collector.probe_once)

    assert server.max_in_flight == 1
    assert len(server.requests) == 4
    for path in ("gateway", "backend"):
        assert sample(registry, "clawlan_probe_requests_total", path, result="success") == 2


def test_a_round_is_skipped_and_counted_while_a_latency_check_holds_the_round_lock(server, tmp_path):
    lock = str(tmp_path / "round.lock")
    collector = LatencyProbeCollector([target_of(server)], round_lock_file=lock)
    registry = registry_of(collector)
    assert collector.probe_once()  # the probe makes the lock file on its first round
    assert registry.get_sample_value("clawlan_probe_rounds_skipped_total") == 0

    with probe_rounds_held(lock) as held:
        assert held
        assert not collector.probe_once()
    assert len(server.requests) == 1
    assert registry.get_sample_value("clawlan_probe_rounds_skipped_total") == 1

    assert collector.probe_once()  # the check's end frees the probe at once
    assert len(server.requests) == 2


# The check's side, in a process of its own as on a host: under gevent (pyinfra's import patches it in when the
# e2e suite shares the session) a blocking flock would stop this whole process, the probe's round with it.
CHECK_SIDE = """
import sys, time
from roles.monitor.programs.stream import probe_rounds_held
with probe_rounds_held(sys.argv[1]) as held:
    assert held
    print(time.time())
"""


def test_a_latency_check_waits_for_the_round_in_flight(server, tmp_path):
    server.first_delay_s = 0.5
    lock = str(tmp_path / "round.lock")
    collector = LatencyProbeCollector([target_of(server)], round_lock_file=lock)
    registry = registry_of(collector)
    collector.probe_once()
    round_in_flight = threading.Thread(target=collector.probe_once)
    round_in_flight.start()
    while len(server.requests) < 2:  # the second round's chat has reached the server
        time.sleep(0.01)
    check = subprocess.run([sys.executable, "-c", CHECK_SIDE, lock], cwd=REPO, capture_output=True, text=True,
                           timeout=30, check=True)  # fmt: skip
    round_in_flight.join()
    round_ended = registry.get_sample_value("clawlan_probe_last_success_timestamp_seconds", {"path": "backend"})
    assert sample(registry, "clawlan_probe_requests_total", result="success") == 2
    assert float(check.stdout) >= round_ended


def test_a_latency_check_on_a_host_without_a_probe_holds_nothing(tmp_path):
    with probe_rounds_held(str(tmp_path / "absent.lock")) as held:
        assert not held
    assert not (tmp_path / "absent.lock").exists()


def run_together(*calls) -> None:
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        call()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_collector_arithmetic():
    clock = FakeClock(1000.0)
    script: dict[str, list[tuple[float, ProbeResult | Exception]]] = {
        "gateway": [
            (2.5, ProbeResult(ttft_s=0.3, inter_token_s=(0.01, 0.04, 0.05, 2.0), tokens=5, duration_s=2.5)),
            (0.4, ProbeError("http_500", "500 Internal Server Error")),
            (0.7, RuntimeError("a bug in the probe")),
        ],
        "backend": [
            (0.6, ProbeResult(ttft_s=0.5, inter_token_s=(), tokens=1, duration_s=0.6)),
            (0.2, ProbeResult(ttft_s=0.05, inter_token_s=(0.02, 0.02), tokens=3, duration_s=0.2)),
            (0.1, ProbeError("protocol", "no [DONE]")),
        ],
    }

    def probe(target: Target) -> ProbeResult:
        took, outcome = script[target.name].pop(0)
        clock.now += took
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    targets = [Target(name, f"http://127.0.0.1:9/{name}", "m") for name in ("gateway", "backend")]
    collector = LatencyProbeCollector(targets, probe=probe, clock=clock)
    registry = registry_of(collector)

    collector.probe_once()
    # A single chunk has no decode speed to report.
    assert sample(registry, "clawlan_probe_tokens_per_second", "backend") is None
    assert sample(registry, "clawlan_probe_tokens_per_second", "gateway") == pytest.approx(4 / 2.1)
    collector.probe_once()
    collector.probe_once()
    assert script == {"gateway": [], "backend": []}

    # gateway: one success, then an HTTP error, then a crash of the probe itself.
    assert buckets(registry, TTFT, TTFT_BUCKETS, "gateway") == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    assert sample(registry, f"{TTFT}_sum", "gateway") == pytest.approx(0.3)
    # 0.01 and 0.04 sit on bucket edges: le is inclusive.
    assert buckets(registry, ITL, INTER_TOKEN_BUCKETS, "gateway") == [0, 1, 1, 2, 3, 3, 3, 3, 4]
    assert sample(registry, f"{ITL}_count", "gateway") == 4
    assert sample(registry, f"{ITL}_sum", "gateway") == pytest.approx(2.1)
    assert sample(registry, "clawlan_probe_tokens_per_second", "gateway") == pytest.approx(4 / 2.1)
    assert sample(registry, "clawlan_probe_success", "gateway") == 0
    assert sample(registry, "clawlan_probe_duration_seconds", "gateway") == pytest.approx(0.7)
    assert sample(registry, "clawlan_probe_last_success_timestamp_seconds", "gateway") == pytest.approx(1002.5)
    assert sample(registry, "clawlan_probe_requests_total", "gateway", result="success") == 1
    assert sample(registry, "clawlan_probe_requests_total", "gateway", result="error") == 2
    assert sample(registry, "clawlan_probe_errors_total", "gateway", reason="http_500") == 1
    assert sample(registry, "clawlan_probe_errors_total", "gateway", reason="internal") == 1
    assert sample(registry, "clawlan_probe_errors_total", "gateway", reason="timeout") == 0

    # backend: two successes (TTFT 0.5 on an edge, 0.05 on the first one), then a protocol error.
    assert buckets(registry, TTFT, TTFT_BUCKETS, "backend") == [1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2]
    assert sample(registry, f"{TTFT}_sum", "backend") == pytest.approx(0.55)
    assert buckets(registry, ITL, INTER_TOKEN_BUCKETS, "backend") == [0, 0, 2, 2, 2, 2, 2, 2, 2]
    assert sample(registry, "clawlan_probe_tokens_per_second", "backend") == pytest.approx(50)
    assert sample(registry, "clawlan_probe_success", "backend") == 0
    assert sample(registry, "clawlan_probe_duration_seconds", "backend") == pytest.approx(0.1)
    assert sample(registry, "clawlan_probe_last_success_timestamp_seconds", "backend") == pytest.approx(1003.7)
    assert sample(registry, "clawlan_probe_requests_total", "backend", result="success") == 2
    assert sample(registry, "clawlan_probe_errors_total", "backend", reason="protocol") == 1


class StubCollector:
    def __init__(self, work_s: float, rounds: int, stop: threading.Event) -> None:
        self.work_s, self.rounds, self.stop = work_s, rounds, stop
        self.starts: list[float] = []

    def probe_once(self) -> None:
        self.starts.append(time.monotonic())
        time.sleep(self.work_s)
        if len(self.starts) == self.rounds:
            self.stop.set()


@pytest.mark.parametrize(
    ("work_s", "expected_gap_s"),
    [(0.01, 0.05), (0.07, 0.1)],
    ids=["start_to_start", "overrun_skips_a_tick"],
)
def test_run_forever_interval(work_s, expected_gap_s):
    stop = threading.Event()
    stub = StubCollector(work_s, rounds=4, stop=stop)
    run_forever(stub, 0.05, stop)  # type: ignore[arg-type]
    gaps = [later - earlier for earlier, later in zip(stub.starts, stub.starts[1:], strict=False)]
    assert len(gaps) == 3
    assert all(gap == pytest.approx(expected_gap_s, abs=0.02) for gap in gaps)


def test_run_forever_stops_while_waiting():
    stop = threading.Event()
    stub = StubCollector(0, rounds=0, stop=stop)
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    run_forever(stub, 30, stop)  # type: ignore[arg-type]
    assert time.monotonic() - started < 1
    assert len(stub.starts) == 1


def test_target_from_config(tmp_path):
    key_file = tmp_path / "api-key"
    key_file.write_text(f"{API_KEY}\n")
    entry = {"name": "gateway", "url": "https://front.lan:18789/v1/chat/completions", "model": "m"}

    target = target_from_config({**entry, "api_key_file": str(key_file), "timeout_s": 12})
    assert target.headers == {"Authorization": f"Bearer {API_KEY}"}
    assert isinstance(target.ssl_context, ssl.SSLContext)
    assert (target.max_tokens, target.timeout_s) == (16, 12.0)
    assert API_KEY not in repr(target)

    key_file.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        target_from_config({**entry, "api_key_file": str(key_file)})


def test_tls_settings_on_a_plain_url_are_refused():
    with pytest.raises(ValueError, match="plain http"):
        Target("backend", "http://back.lan:8080/v1/chat/completions", "m", ssl_context=ssl.create_default_context())


def test_target_from_config_builds_the_tls_context_its_url_and_files_ask_for(tmp_path):
    def self_signed(name: str) -> tuple[str, str]:
        key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-subj", f"/CN={name}", "-days", "1", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        return str(cert), str(key)

    ca, _ = self_signed("site-ca")
    cert, key = self_signed("probe")
    _, other_key = self_signed("other")
    entry = {"name": "backend", "model": "m"}
    plain = "http://back.lan:8443/v1/chat/completions"
    mutual = "https://back.lan:8443/v1/chat/completions"

    assert target_from_config({**entry, "url": plain}).ssl_context is None
    with pytest.raises(ValueError, match="plain http"):
        target_from_config({**entry, "url": plain, "ca_file": ca})
    context = target_from_config(
        {**entry, "url": mutual, "ca_file": ca, "cert_file": cert, "key_file": key}
    ).ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    with pytest.raises(ssl.SSLError):  # the client certificate is loaded with its key, not just named
        target_from_config({**entry, "url": mutual, "ca_file": ca, "cert_file": cert, "key_file": other_key})


def test_target_from_config_reads_the_token_from_the_named_environment_variable(monkeypatch):
    entry = {"name": "gateway", "url": "http://front.lan:18789/v1/chat/completions", "model": "m"}
    monkeypatch.setenv("CLAWLAN_TEST_TOKEN", f"{API_KEY}\n")
    target = target_from_config({**entry, "api_key_env": "CLAWLAN_TEST_TOKEN"})
    assert target.headers == {"Authorization": f"Bearer {API_KEY}"}

    monkeypatch.delenv("CLAWLAN_TEST_TOKEN")
    with pytest.raises(ValueError, match="CLAWLAN_TEST_TOKEN is not set"):
        target_from_config({**entry, "api_key_env": "CLAWLAN_TEST_TOKEN"})


def test_the_probe_runs_from_its_two_files_as_installed_on_a_host(tmp_path):
    """On the frontend the modules sit in /opt/clawlan/probe, outside this repository's packages."""
    for module in ("collector.py", "stream.py"):
        (tmp_path / module).write_text((REPO / "roles" / "monitor" / "programs" / module).read_text())
    result = subprocess.run([sys.executable, str(tmp_path / "collector.py")], capture_output=True, text=True,
                            cwd="/", env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode != 0
    assert "usage:" in result.stderr and "Traceback" not in result.stderr, result.stderr
