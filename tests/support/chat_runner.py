"""Streamed chats run on an appliance host, one JSON line per chat on stdout (uploaded there by chats.py).

    python3 chat_runner.py SPEC.json COUNT CONCURRENCY ROUND_LOCK
    python3 chat_runner.py --session NAME SPEC.json TURNS ROUND_LOCK
    python3 chat_runner.py --long NAME SPEC.json WORDS ROUND_LOCK

In the first form, a spec with "session_prefix" and "people" makes chat i a turn of person i mod people's own gateway
session (OpenClaw keeps its history), as people in their conversations chat, instead of a new session each.

The second form holds a conversation instead: TURNS chats in one gateway session, one after the other, each line the
tokens the gateway reports the model counted (its prompt, the part of it served from the cache, its answer). The
third is one chat of a new session whose message is WORDS words long (a prompt near the context limit), its line
those counts and the seconds it took.

Standard library only, beside roles/monitor/programs/stream.py: it runs on the hosts' Debian python3. It runs as root
and reads the bearer token itself from the EnvironmentFile the spec names, so the secret is in neither the spec nor
a command line, and never in what it prints. ROUND_LOCK is the probe's round lock file: a probe on the host keeps
off the model while the chats run, so they measure the path, not the path queueing behind a probe round.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import stream  # uploaded beside this file


def env_value(path: str, name: str) -> str:
    """``name``'s value in a systemd EnvironmentFile (KEY=VALUE lines, as the deploys write them)."""
    for line in Path(path).read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            if value:
                return value
    # The message names the variable and the file, never a value.
    raise SystemExit(f"{name} is not set in {path}")


def build_target(spec: dict) -> stream.Target:
    headers = {}
    if spec.get("env_var"):
        headers["Authorization"] = f"Bearer {env_value(spec['env_file'], spec['env_var'])}"
    elif spec.get("token_file"):  # a file holding the token alone (llama-server's key file)
        headers["Authorization"] = f"Bearer {Path(spec['token_file']).read_text().strip()}"
    return stream.Target(
        name=spec.get("name", "chat"),
        url=spec["url"],
        model=spec["model"],
        headers=headers,
        ssl_context=stream.client_tls_context(
            spec["url"], spec.get("ca_file"), spec.get("cert_file"), spec.get("key_file")
        ),
        max_tokens=int(spec.get("max_tokens", 16)),
        timeout_s=float(spec.get("timeout_s", 60)),
    )


def chat(target: stream.Target) -> dict:
    try:
        result = stream.stream_chat(target)
    except stream.ProbeError as error:
        return {"error": error.reason, "message": error.message}
    except Exception as error:  # one chat's surprise must not cost the other chats their results
        return {"error": "exception", "message": f"{type(error).__name__}: {error}"}
    return {
        "ttft_s": result.ttft_s,
        "inter_token_s": list(result.inter_token_s),
        "tokens": result.tokens,
        "duration_s": result.duration_s,
    }


def session_turn(target: stream.Target, session: str, text: str) -> dict:
    """One chat of gateway session ``session`` (OpenClaw keeps its history), not streamed: the answer's usage is what
    the model server reported for it upstream."""
    body = {"model": target.model, "messages": [{"role": "user", "content": text}], "max_tokens": target.max_tokens}
    request = urllib.request.Request(
        target.url,
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "x-openclaw-session-key": session, **target.headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=target.timeout_s, context=target.ssl_context) as response:
            answer = json.load(response)
        usage = answer.get("usage") or {}
        choice = (answer.get("choices") or [{}])[0]
    except Exception as error:  # one turn's failure is reported, not raised: the caller shows every turn
        return {"error": type(error).__name__, "message": str(error)[:500]}
    return {
        "prompt_tokens": usage.get("prompt_tokens"),
        "cached_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "finish_reason": choice.get("finish_reason"),
    }


# Ten words of one of Qwen's tokens each (three characters with their space), repeated in an order that never
# settles into a cycle, so no cache holds a fragment of the text from another run. OpenClaw estimates a prompt at
# three characters a token: for this text its estimate is the model's count.
LONG_WORDS = ("an", "to", "of", "in", "it", "is", "on", "at", "by", "we")


def long_text(words: int) -> str:
    text = " ".join(LONG_WORDS[(i * 7 + i // 10) % len(LONG_WORDS)] for i in range(words))
    return f"{text}\nWhich word came first?"


def run_long(argv: list[str]) -> int:
    if len(argv) != 6:
        raise SystemExit(f"usage: {argv[0]} --long NAME SPEC.json WORDS ROUND_LOCK")
    session, spec, words = argv[2], json.loads(Path(argv[3]).read_text()), int(argv[4])
    target = build_target(spec)
    with stream.probe_rounds_held(argv[5]):
        started = time.monotonic()
        record = session_turn(target, session, long_text(words))
        print(json.dumps({**record, "duration_s": round(time.monotonic() - started, 3)}), flush=True)
    return 0


def run_session(argv: list[str]) -> int:
    if len(argv) != 6:
        raise SystemExit(f"usage: {argv[0]} --session NAME SPEC.json TURNS ROUND_LOCK")
    session, spec, turns = argv[2], json.loads(Path(argv[3]).read_text()), int(argv[4])
    target = build_target(spec)
    with stream.probe_rounds_held(argv[5]):
        for turn in range(1, turns + 1):
            print(json.dumps(session_turn(target, session, f"Turn {turn}: go on.")), flush=True)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) > 1 and argv[1] == "--session":
        return run_session(argv)
    if len(argv) > 1 and argv[1] == "--long":
        return run_long(argv)
    if len(argv) != 5:
        raise SystemExit(f"usage: {argv[0]} SPEC.json COUNT CONCURRENCY ROUND_LOCK")
    spec = json.loads(Path(argv[1]).read_text())
    count, concurrency = int(argv[2]), int(argv[3])
    target = build_target(spec)
    printing = threading.Lock()
    # People in conversations of their own: chat i is a turn of session "<prefix>-<i mod people>" (OpenClaw keeps
    # each one's history), instead of a new session each.
    prefix, people = spec.get("session_prefix"), int(spec.get("people", 1))

    def target_of(number: int) -> stream.Target:
        if not prefix:
            return target
        session = {"x-openclaw-session-key": f"{prefix}-{number % people}"}
        return dataclasses.replace(target, headers={**target.headers, **session})

    def run_one(number: int) -> None:
        record = chat(target_of(number))
        with printing:  # whole lines only, however the threads interleave
            print(json.dumps(record), flush=True)

    # Each chat opens its own connection (stream_chat does), so concurrent chats are concurrent clients.
    with stream.probe_rounds_held(argv[4]), ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(run_one, range(count)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
