"""ExecStartPost of clawlan-model-server, after the readiness check: evaluate the gateway's prompt prefix, then mark
the server warm.

llama-server reuses a hybrid model's prompt (Qwen3-Next) through context checkpoints: evaluating a chat, it keeps one
at the start of the last user message, and a later chat with the same system prompt and tools restores it and
evaluates only its own messages. A server just started holds none, so the first person to chat would wait for the
whole prompt (25 s for the operator profile's 13k tokens on the reference box). This sends the prefix the gateway
last sent (the capture service keeps it in PREFIX) with a one-character user message, for one token: the checkpoint
is made now, before anyone waits for it.

That warms one slot. Each slot keeps its own checkpoints: with several people at once, every slot not yet warm would
evaluate the whole prefix while the others stream, which stalls them all (on the lab, 8 chats at once through the
gateway: TTFT p99 45x one chat's with one slot warm, 3.7x with all warm; BENCHMARKS.md). Evaluating it again in each
slot would cost a slot's warm-up per slot after every start (25 s each on the reference box). The server can copy it
instead: when it starts a task, it saves every idle slot's prompt, checkpoints included, to its host-memory cache
(--cache-ram, --cache-idle-slots), and a slot given a prompt unlike the one it holds takes the closest cached one.
So once the marker is made, a child left in the unit's cgroup goes through slots 1..N-1 one after another
(``id_slot``): a one-token chat with no system message (its start saves slot 0's warm prefix to the cache, and the
slot then holds a prompt unlike it), then the warm-up chat, which copies the prefix and its checkpoints and
evaluates only the last few tokens. A server without the cache evaluates the prefix in each slot, as it would for a
person; each slot's line in the journal says how many tokens it evaluated. When every slot is done (or there was
nothing more to warm), ALL_SLOTS_MARKER is made beside MARKER: a check of the cache's answers waits for it.

Then it makes MARKER in the unit's RuntimeDirectory. The ingress answers the balancers' health checks 503 until it is
there, and systemd removes the directory when the server stops: a (re)started backend gets chats only once warm. A
warm-up that fails says why and marks the server all the same: it serves, only cold. Failing to make the marker fails
the start: the balancers would never admit the backend.

    warm-up.py [--prefix PREFIX --key-file KEY_FILE [--slots N --all-slots-marker ALL]] MARKER
        (without --prefix, llama-cpp-python: the marker only)
    warm-up.py --prefix PREFIX --key-file KEY_FILE --slots N --all-slots-marker ALL --other-slots
        (the background child: slots 1 to N-1, then ALL)

The key is read from KEY_FILE (root's, and the service's group's), never from a command line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

# The unit's TimeoutStartSec leaves this much after the readiness check's own deadline: far more than the 13k-token
# prompt's 25 s on the reference box.
TIMEOUT_S = float(os.environ.get("WARM_TIMEOUT_S", "240"))
KEPT = ("tools", "tool_choice")  # besides the system message(s): what the capture keeps


class Cold(Exception):
    """The warm-up failed: why, for the journal."""


class NothingToWarm(Exception):
    """No prompt prefix captured yet: a new site, before its first chat. Said in the journal; not a failure."""


def request_body(prefix: object, slot: int = 0) -> dict:
    """The warm-up chat for ``slot``: the captured system message(s), tools and tool_choice, then a user message of
    one character, for one greedy token, not streamed. ValueError if ``prefix`` is not what the capture writes."""
    messages = prefix.get("messages") if isinstance(prefix, dict) else None
    if not messages or not all(isinstance(m, dict) and m.get("role") == "system" for m in messages):
        raise ValueError("not a captured prompt prefix (system messages first)")
    return {
        "messages": [*messages, {"role": "user", "content": "."}],
        **{key: prefix[key] for key in KEPT if key in prefix},
        "max_tokens": 1,
        "temperature": 0,
        "stream": False,
        "cache_prompt": True,  # llama-server's default, and the whole point
        "id_slot": slot,
    }


def ask(body: dict, key_file: str, port: str) -> dict:
    """POST ``body`` to the server's chat endpoint with the key from ``key_file``; its answer. Cold: it failed, and
    why."""
    try:
        with open(key_file, encoding="utf-8") as file:
            key = file.read().strip()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions", json.dumps(body).encode(), headers
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        detail = error.read(300).decode("utf-8", "replace").strip()
        raise Cold(f"warm-up refused ({error.code} {detail}): the server serves, cold") from None
    except (OSError, ValueError) as error:  # no answer in time, no key, an unreadable answer
        raise Cold(f"warm-up failed ({error}): the server serves, cold") from None
    return answer if isinstance(answer, dict) else {}


def handover_body(slot: int) -> dict:
    """A one-token chat with no system message for ``slot``, sent before its warm-up chat. Starting it, the server
    saves the idle slots' prompts (slot 0's warm prefix) to its host-memory cache; and ``slot`` then holds a prompt
    unlike the prefix, which is what makes the server look in the cache for the warm-up chat that follows (given an
    empty slot by id, it does not)."""
    return {
        "messages": [{"role": "user", "content": "."}],
        "max_tokens": 1,
        "temperature": 0,
        "stream": False,
        "id_slot": slot,
    }


def warm(prefix_file: str, key_file: str, port: str, slot: int = 0) -> str:
    """Send the warm-up chat to ``slot``; what it did, for the journal. Cold: it failed, and why. NothingToWarm: no
    prefix was captured yet."""
    try:
        with open(prefix_file, encoding="utf-8") as file:
            prefix = json.load(file)
    except FileNotFoundError:
        raise NothingToWarm(
            "no prompt prefix captured yet (no chat has come through the ingress): nothing to warm"
        ) from None
    except (OSError, ValueError) as error:
        raise Cold(f"warm-up failed ({error}): the server serves, cold") from None
    try:
        body = request_body(prefix, slot)
    except ValueError as error:
        raise Cold(f"warm-up failed ({error}): the server serves, cold") from None
    started = time.monotonic()
    answer = ask(body, key_file, port)
    timings = answer.get("timings")
    evaluated = timings.get("prompt_n", "?") if isinstance(timings, dict) else "?"
    tools = prefix.get("tools")
    where = "" if slot == 0 else f" in slot {slot}"
    return (
        f"warmed the gateway's prompt prefix{where} ({len(prefix['messages'])} system message(s), "
        f"{len(tools) if isinstance(tools, list) else 0} tool(s)): {evaluated} tokens evaluated "
        f"in {time.monotonic() - started:.1f} s"
    )


def warm_other_slots(prefix_file: str, key_file: str, port: str, slots: int) -> str:
    """Slots 1 to ``slots`` - 1, one after another, each line to the journal: each its hand-over chat, then the
    warm-up chat, which copies slot 0's prefix from the host-memory cache. A failure ends it (the rest serve, cold).
    What was done, for the all-slots marker."""
    for slot in range(1, slots):
        try:
            ask(handover_body(slot), key_file, port)
            print(warm(prefix_file, key_file, port, slot), flush=True)
        except (Cold, NothingToWarm) as error:
            print(f"slot {slot}: {error}", file=sys.stderr, flush=True)
            return f"slots {slot} to {slots - 1} left cold: {error}"
    return f"slots 1 to {slots - 1} warmed"


def mark(path: str, outcome: str) -> None:
    with open(path, "w") as marker:
        marker.write(outcome + "\n")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", help="the captured prompt prefix (llama-server only)")
    parser.add_argument("--key-file", help="the server's API key, alone in the file")
    parser.add_argument("--slots", type=int, default=1, help="the server's slots (--parallel): each is warmed")
    parser.add_argument("--all-slots-marker", help="made once every slot is warmed (or nothing more can be)")
    parser.add_argument("--other-slots", action="store_true", help="warm slots 1 to N-1 now (the background child)")
    parser.add_argument(
        "marker", nargs="?", help="made once warm: the ingress admits the backend only while it is there"
    )
    args = parser.parse_args(argv)
    if args.prefix and not args.key_file:
        parser.error("--prefix needs --key-file")
    if args.slots < 1:
        parser.error("--slots must be at least 1")
    if args.slots > 1 and not args.all_slots_marker:
        parser.error("--slots above 1 needs --all-slots-marker")
    if args.other_slots:
        if not args.prefix:
            parser.error("--other-slots needs --prefix")
        outcome = warm_other_slots(args.prefix, args.key_file, os.environ["PORT"], args.slots)
        mark(args.all_slots_marker, outcome)
        return
    if not args.marker:
        parser.error("the marker is required")
    warmed = False
    if args.prefix:
        try:
            outcome = warm(args.prefix, args.key_file, os.environ["PORT"])
            warmed = True
            print(outcome, flush=True)
        except NothingToWarm as nothing:
            outcome = str(nothing)
            print(outcome, flush=True)
        except Cold as error:
            outcome = str(error)
            print(outcome, file=sys.stderr, flush=True)
    else:
        outcome = "no warm-up on this engine: marked warm once ready"
        print(outcome, flush=True)
    try:
        # The outcome goes in the marker too: the journal rotates it away under the chats' lines, and LLM-13 reads it.
        mark(args.marker, outcome)
        if args.all_slots_marker and not (warmed and args.slots > 1):
            mark(args.all_slots_marker, "no other slot to warm")
    except OSError as error:
        sys.exit(f"cannot mark the server warm, so the balancers would never admit it: {error}")
    if warmed and args.slots > 1:
        # Its own session, the journal as its output: it outlives this ExecStartPost in the unit's cgroup, and a stop
        # of the server kills it with the rest of the unit.
        command = [sys.executable, "-B", os.path.abspath(__file__), "--prefix", args.prefix, "--key-file"]
        command += [args.key_file, "--slots", str(args.slots), "--all-slots-marker", args.all_slots_marker]
        subprocess.Popen([*command, "--other-slots"], start_new_session=True)


if __name__ == "__main__":
    main(sys.argv[1:])
