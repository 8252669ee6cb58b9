"""One streamed chat completion, timed chunk by chunk as a client sees it: what the latency probe measures.

Standard library only, so the latency suite and the benchmark can run it on any appliance host.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any
from urllib.parse import urlsplit

# Asks for more tokens than max_tokens allows, so every probe yields max_tokens gaps to measure; a fixed prompt
# keeps probes comparable (and lets the server reuse its prompt cache, so TTFT tracks queueing, not prefill).
PROMPT = "Count from 1 to 100, separated by spaces."
# An SSE line longer than this is not a token chunk; bounds memory against a misbehaving server.
MAX_LINE_BYTES = 1 << 20


@dataclass(frozen=True)
class Target:
    """One endpoint to probe; ``name`` becomes the ``path`` label (e.g. "gateway", "backend")."""

    name: str
    url: str  # the chat completions endpoint, e.g. https://front.lan:18789/v1/chat/completions
    model: str
    # repr=False: the Authorization header carries the bearer token, which must never reach a log.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    max_tokens: int = 16
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        # Fail at start, not on every probe, when the configuration cannot work.
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"target {self.name!r}: url must be http(s)://host[:port]/path, got {self.url!r}")
        if self.ssl_context is not None and parts.scheme != "https":
            raise ValueError(f"target {self.name!r}: TLS settings given for a plain http url")
        if self.max_tokens < 1 or not self.timeout_s > 0:
            raise ValueError(f"target {self.name!r}: max_tokens and timeout_s must be positive")


@dataclass(frozen=True)
class ProbeResult:
    """What one streamed completion looked like from the client's side."""

    ttft_s: float
    inter_token_s: tuple[float, ...]
    tokens: int  # content chunks; llama.cpp-style servers stream one token per chunk
    duration_s: float

    @property
    def tokens_per_second(self) -> float | None:
        """Decode speed only: the first token's wait is TTFT's business, so it is left out."""
        span = sum(self.inter_token_s)
        if self.tokens < 2 or span <= 0:  # chunks read in one go have no measurable span
            return None
        return (self.tokens - 1) / span


@contextlib.contextmanager
def probe_round(lock_file: str | None) -> Iterator[bool]:
    """The probe's side of the round lock: True while this round holds ``lock_file``, False when a latency check
    holds it (the probe then skips the round). The file is made on first use; closing it releases the lock."""
    if lock_file is None:
        yield True
        return
    with open(lock_file, "a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            ours = False
        else:
            ours = True
        yield ours


@contextlib.contextmanager
def probe_rounds_held(lock_file: str) -> Iterator[bool]:
    """A latency check's side: waits for the probe's round in flight, then keeps the probe off the model until the
    block ends. The model server serves one chat at a time, so a probe round beside measured chats would measure
    the two queueing behind each other, not the path. The kernel drops the lock with its process, so a check that
    dies cannot silence the probe. False when no probe runs on this host (no lock file)."""
    with contextlib.ExitStack() as stack:
        try:
            file = stack.enter_context(open(lock_file))
        except FileNotFoundError:
            yield False
            return
        fcntl.flock(file, fcntl.LOCK_EX)
        yield True


def client_tls_context(
    url: str, ca_file: str | None = None, cert_file: str | None = None, key_file: str | None = None
) -> ssl.SSLContext | None:
    """The TLS client context for a target: ``None`` for plain http without TLS settings, else one that trusts
    ``ca_file`` (the system's CAs without it) and, for mutual TLS, presents ``cert_file`` with ``key_file``.
    TLS settings on an http url give a context all the same, for Target to refuse."""
    if urlsplit(url).scheme != "https" and not ca_file and not cert_file:
        return None
    context = ssl.create_default_context(cafile=ca_file)
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    return context


class ProbeError(Exception):
    """A failed probe; ``reason`` is a short, bounded label value ("timeout", "http_503", ...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def stream_chat(target: Target, clock: Callable[[], float] = time.monotonic) -> ProbeResult:
    """Send one streamed chat completion and time its chunks as a client sees them.

    A new connection per probe, so a half-dead kept-alive connection never makes one probe fail for the last one.
    TTFT starts when the request is sent (after connect and TLS handshake): it is the server's answer time, what a
    client with a warm connection waits. ``duration_s`` covers everything, connection included.
    """
    parts = urlsplit(target.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = json.dumps(
        {
            "model": target.model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": target.max_tokens,
            "temperature": 0,
            "stream": True,
        }
    ).encode()
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream", **target.headers}

    start = clock()
    deadline = start + target.timeout_s
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=target.timeout_s, context=target.ssl_context
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=target.timeout_s)
    try:
        conn.connect()
        # Our own reference: http.client drops conn.sock once the response owns the connection.
        sock = conn.sock
        # Nagle would hold the request back waiting for an ACK and add its delay to TTFT. http.client sets this
        # itself on current Pythons; the measurement should not depend on that.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _set_deadline_timeout(sock, deadline, clock)
        sent = clock()
        conn.request("POST", path, body, headers)
        _set_deadline_timeout(sock, deadline, clock)
        response = conn.getresponse()
        if response.status != 200:
            raise ProbeError(f"http_{response.status}", f"{response.status} {response.reason}")
        stamps = _content_chunk_times(response, sock, deadline, clock)
        end = clock()
    except ProbeError:
        raise
    except TimeoutError as error:  # socket.timeout, also raised by a TLS handshake that takes too long
        raise ProbeError("timeout", f"no answer within {target.timeout_s:g}s") from error
    except http.client.IncompleteRead as error:  # a chunked stream cut off mid-chunk
        raise ProbeError("protocol", f"stream cut off: {error!r}") from error
    except OSError as error:  # refused, reset, unreachable, name resolution, certificate rejected
        raise ProbeError("connection", str(error) or type(error).__name__) from error
    except http.client.HTTPException as error:  # a malformed status line or headers
        raise ProbeError("protocol", repr(error)) from error
    finally:
        conn.close()
    return ProbeResult(
        ttft_s=stamps[0] - sent,
        inter_token_s=tuple(later - earlier for earlier, later in pairwise(stamps)),
        tokens=len(stamps),
        duration_s=end - start,
    )


def _set_deadline_timeout(sock: socket.socket, deadline: float, clock: Callable[[], float]) -> None:
    """Shrink the socket timeout to what is left, so a server trickling lines cannot stretch the overall deadline.

    The deadline is re-checked between lines; one line's reads can each wait the remaining time, which is what a
    pathological server could still abuse -- acceptable for a probe of our own servers.
    """
    remaining = deadline - clock()
    if remaining <= 0:
        raise ProbeError("timeout", "deadline passed")
    sock.settimeout(remaining)


def _content_chunk_times(
    response: http.client.HTTPResponse, sock: socket.socket, deadline: float, clock: Callable[[], float]
) -> list[float]:
    """Arrival time of each SSE chunk that carries content.

    Role-only and empty deltas (the first chunk of an OpenAI stream, the final finish_reason chunk) are not tokens,
    so they neither start TTFT nor count. Each ``data:`` line is taken as one event: OpenAI-compatible servers never
    split an event over several lines.
    """
    stamps: list[float] = []
    while True:
        _set_deadline_timeout(sock, deadline, clock)
        line = response.readline(MAX_LINE_BYTES)
        now = clock()
        if not line:
            raise ProbeError("protocol", f"stream ended without 'data: [DONE]' after {len(stamps)} content chunks")
        if len(line) >= MAX_LINE_BYTES and not line.endswith(b"\n"):
            raise ProbeError("protocol", f"SSE line longer than {MAX_LINE_BYTES} bytes")
        line = line.rstrip(b"\r\n")
        if not line.startswith(b"data:"):
            continue  # blank separators, ": keep-alive" comments, event: and id: fields
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        if _delta_content(data):
            stamps.append(now)
    if not stamps:
        raise ProbeError("protocol", "no content chunk before 'data: [DONE]'")
    return stamps


def _delta_content(data: bytes) -> str:
    """The content of one streamed chunk, or "" for chunks without text."""
    try:
        event: Any = json.loads(data)
    except ValueError as error:
        raise ProbeError("protocol", f"chunk is not JSON: {data[:80]!r}") from error
    if not isinstance(event, dict):
        raise ProbeError("protocol", f"chunk is not a JSON object: {data[:80]!r}")
    if "error" in event:  # servers report failures mid-stream this way, after the 200 is already sent
        raise ProbeError("protocol", f"error event in stream: {str(event['error'])[:200]}")
    choices = event.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    delta = choices[0].get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""
