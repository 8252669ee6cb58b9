"""Streamed chats run on an appliance host, their timings brought back: the latency suite's and the benchmark's client.

The chats start on the host itself (a frontend for the users' paths, the backend for the direct baseline), so what
is measured is the appliance's path, not this machine's link to it. Each chat is roles/monitor/programs/stream.py's
``stream_chat``, the probe's own client, driven by chat_runner.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shlex
import stat
import uuid
import weakref
from pathlib import Path
from typing import Any

from roles.common.tls import CA_CERT
from roles.gateway.config import ENV_FILE as GATEWAY_ENV_FILE
from roles.model_server.config import ALL_SLOTS_MARKER
from roles.monitor.probe import CERT as PROBE_CERT
from roles.monitor.probe import KEY as PROBE_KEY
from roles.monitor.probe import ROUND_LOCK as PROBE_ROUND_LOCK
from tests.support.remote import put_text
from tests.support.waiting import seconds_until

REMOTE_DIR = "/tmp/clawlan-chats"
STREAM_SOURCE = Path(__file__).resolve().parents[2] / "roles" / "monitor" / "programs" / "stream.py"
RUNNER_SOURCE = Path(__file__).with_name("chat_runner.py")
RUNNER = f"{REMOTE_DIR}/chat_runner.py"
CACHE_CHECK_SOURCE = Path(__file__).with_name("cache_check.py")
CACHE_CHECK = f"{REMOTE_DIR}/cache_check.py"
# What a spec may hold: where the secret is, never the secret; anything else is refused before it is uploaded.
SPEC_KEYS = frozenset(
    {
        "name",
        "url",
        "model",
        "env_file",
        "env_var",
        "token_file",
        "ca_file",
        "cert_file",
        "key_file",
        "max_tokens",
        "timeout_s",
        "session_prefix",
        "people",
    }
)

# host -> names of the specs already uploaded there. The runner and stream.py go up once per host and run, so a
# benchmark's hundred single chats cost one SSH command each, not three uploads.
_uploaded: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def run_chats(host, target: dict[str, Any], count: int, concurrency: int = 1) -> list[dict[str, Any]]:
    """Run ``count`` streamed chats to ``target`` on ``host``, ``concurrency`` at a time; one record per chat. With
    ``session_prefix`` and ``people`` in ``target`` (the gateway's), chat i is a turn of that person's conversation
    (``people`` of them, in turn), not a new session.

    A record is ``{"ttft_s", "inter_token_s", "tokens", "duration_s"}`` or ``{"error", "message"}``, in the order
    the chats finished. ``target`` names the EnvironmentFile and variable holding the bearer token; the runner
    reads it as root on the host. A probe on the host skips its rounds while the chats run, and a round in flight
    finishes before they start.
    """
    if count < 1 or concurrency < 1:
        raise ValueError(f"count and concurrency must be positive, got {count} and {concurrency}")
    unknown = set(target) - SPEC_KEYS
    if unknown:
        raise ValueError(f"unknown target keys {sorted(unknown)} (secrets never go into a spec)")
    spec_path = _upload(host, json.dumps(target, indent=2, sort_keys=True) + "\n")
    arguments = ("python3", "-B", RUNNER, spec_path, str(count), str(concurrency), PROBE_ROUND_LOCK)
    command = " ".join(shlex.quote(arg) for arg in arguments)
    result = host.run(command)
    name = host.backend.get_hostname()
    if result.rc != 0:
        raise RuntimeError(f"chat runner on {name} exited {result.rc}: {result.stderr.strip()[-2000:]}")
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    if len(records) != count:
        raise RuntimeError(f"chat runner on {name} reported {len(records)} chats, not {count}")
    return records


def people_in_conversations(target: dict[str, Any], people: int) -> dict[str, Any]:
    """The gateway ``target`` for ``people`` people, each in a conversation of their own (new ones, named for this
    run): run_chats' chat i is a turn of person i mod ``people``."""
    return {**target, "session_prefix": f"clawlan-people-{uuid.uuid4().hex[:12]}", "people": people}


def one_then_at_once(
    host, target: dict[str, Any], concurrency: int, rounds: int, people: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """People at once, the records of both sides: ``rounds`` rounds of ``concurrency`` chats one after another and
    as many at once, alternated, so that a drift in the machine's load falls on both. With ``people``, every chat is
    a turn of one of ``concurrency`` conversations (the targets' load), each begun by an unmeasured first turn;
    without, every chat is a new session."""
    target = people_in_conversations(target, concurrency) if people else target
    run_chats(host, target, count=concurrency, concurrency=1)  # each person's first turn (or a warm-up), unmeasured
    single: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []
    for _ in range(rounds):
        single += run_chats(host, target, count=concurrency, concurrency=1)
        batch += run_chats(host, target, count=concurrency, concurrency=concurrency)
    return single, batch


# A session turn's message as the model sees it: chat_runner.py's "Turn N: go on." and the timestamp line OpenClaw
# puts before it, under this many of Qwen's tokens.
MESSAGE_TOKENS = 24


def run_session(host, target: dict[str, Any], session: str, turns: int) -> list[dict[str, Any]]:
    """``turns`` chats of one gateway session on ``host`` (chat_runner.py --session), the probe held off meanwhile.

    A record is ``{"prompt_tokens", "cached_tokens", "completion_tokens"}`` as the gateway reports what the model
    server counted (``prompt_tokens - cached_tokens`` were evaluated for this chat), or ``{"error", "message"}``.
    """
    if turns < 1:
        raise ValueError(f"a session has turns, got {turns}")
    return _run_in_session(host, target, "--session", session, turns)


def run_long_chat(host, target: dict[str, Any], session: str, words: int) -> dict[str, Any]:
    """One chat of a new gateway session on ``host`` whose message is ``words`` words (one of Qwen's tokens each):
    ``{"prompt_tokens", "cached_tokens", "completion_tokens", "finish_reason", "duration_s"}`` or
    ``{"error", "message"}``."""
    if words < 1:
        raise ValueError(f"a long chat has words, got {words}")
    (record,) = _run_in_session(host, target, "--long", session, words)
    return record


def _run_in_session(host, target: dict[str, Any], mode: str, session: str, count: int) -> list[dict[str, Any]]:
    if not session.replace("-", "").isalnum():
        raise ValueError(f"a session is letters, digits and dashes, got {session!r}")
    unknown = set(target) - SPEC_KEYS
    if unknown:
        raise ValueError(f"unknown target keys {sorted(unknown)} (secrets never go into a spec)")
    spec_path = _upload(host, json.dumps(target, indent=2, sort_keys=True) + "\n")
    arguments = ("python3", "-B", RUNNER, mode, session, spec_path, str(count), PROBE_ROUND_LOCK)
    result = host.run(" ".join(shlex.quote(arg) for arg in arguments))
    if result.rc != 0:
        raise RuntimeError(f"chat runner exited {result.rc}: {result.stderr.strip()[-2000:]}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def cache_check(host, port: int, key_file: str, scenario: str) -> dict[str, Any]:
    """cache_check.py's verdict on ``host`` (a backend): chats to its model server as served and freshly evaluated,
    once its warm-up is over for every slot (a warm-up request would take a slot from under the check)."""
    seconds_until(lambda: host.file(ALL_SLOTS_MARKER).exists, 300, "the model server's warm-up over for every slot")
    if host not in _uploaded:
        _upload_runner(host)
        _uploaded[host] = set()
    put_text(host, CACHE_CHECK, CACHE_CHECK_SOURCE.read_text(), 0o644)
    arguments = ("python3", "-B", CACHE_CHECK, str(port), key_file, scenario)
    result = host.run(" ".join(shlex.quote(arg) for arg in arguments))
    if result.rc != 0:
        raise RuntimeError(f"cache check exited {result.rc}: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout)


def evaluated(record: dict[str, Any]) -> int:
    """Prompt tokens the model server evaluated for a chat: its prompt less what came from the cache."""
    return record["prompt_tokens"] - (record["cached_tokens"] or 0)


def path_targets(site, frontend_name: str, max_tokens: int | None = None) -> dict[str, dict[str, Any]]:
    """The latency suite's two paths, both run from ``frontend_name``, as the probe there sees them.

    "gateway": OpenClaw on the frontend's LAN address, as a user's browser reaches it. "backend": the backend's
    mutual TLS listener, with the probe's client certificate (root reads its key).
    """
    gateway = site.gateway_config(frontend_name)
    backend = next(h for h in site.topology.hosts if h.role == "backend")
    common = {
        "max_tokens": site.monitor.probe_max_tokens if max_tokens is None else max_tokens,
        "timeout_s": site.monitor.probe_timeout_s,
        "env_file": GATEWAY_ENV_FILE,
    }
    return {
        "gateway": {
            "name": "gateway",
            "url": f"{gateway.url}/v1/chat/completions",
            "model": "openclaw",
            "env_var": "OPENCLAW_GATEWAY_TOKEN",
            "ca_file": CA_CERT,
            **common,
        },
        "backend": {
            "name": "backend",
            "url": f"https://{site.topology.model_endpoint_name()}:{site.settings[frontend_name].mtls.port}/v1/chat/completions",
            "model": site.settings[backend.name].model_server.model_alias,
            "env_var": "CLAWLAN_MODEL_API_KEY",
            "ca_file": CA_CERT,
            "cert_file": PROBE_CERT,
            "key_file": PROBE_KEY,
            **common,
        },
    }


def _upload(host, spec: str) -> str:
    """The spec's path on ``host``, uploading the runner first if this process has not yet."""
    uploaded = _uploaded.get(host)
    if uploaded is None:
        _upload_runner(host)
        uploaded = _uploaded[host] = set()
    # Named by content: a spec already there is the same spec.
    path = f"{REMOTE_DIR}/spec-{hashlib.sha256(spec.encode()).hexdigest()[:16]}.json"
    if path not in uploaded:
        put_text(host, path, spec, 0o644)
        uploaded.add(path)
    return path


def _upload_runner(host) -> None:
    """Put stream.py and the runner into REMOTE_DIR, refusing a directory someone else could have planted.

    Root runs what is there, and /tmp is everybody's: before anything is written (a planted symlink inside would
    redirect the write), the directory must be the SSH login's own, a real directory, writable by nobody else. The
    login's uid is its home directory's owner, where SFTP sessions start.
    """
    sftp = host.backend.client.open_sftp()
    try:
        login_uid = sftp.stat(sftp.normalize(".")).st_uid
        with contextlib.suppress(OSError):  # already there: judged below
            sftp.mkdir(REMOTE_DIR, 0o700)
        directory = sftp.lstat(REMOTE_DIR)
        if not stat.S_ISDIR(directory.st_mode) or directory.st_uid != login_uid or directory.st_mode & 0o022:
            raise RuntimeError(
                f"{REMOTE_DIR} on {host.backend.get_hostname()} is not the SSH login's private directory: "
                "refusing to run code from it as root (remove it and retry)"
            )
    finally:
        sftp.close()
    put_text(host, f"{REMOTE_DIR}/stream.py", STREAM_SOURCE.read_text(), 0o644)
    put_text(host, RUNNER, RUNNER_SOURCE.read_text(), 0o644)
