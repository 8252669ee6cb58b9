"""Is the model server's prompt cache invisible? Run on a backend as root (uploaded by tests/support/cache.py):

    python3 cache_check.py PORT KEY_FILE SCENARIO

Chats straight to the model server on loopback, each answered twice: as the server serves it (its prompt cache,
context checkpoints, the host-memory cache, whatever the flags allow) and as a fresh evaluation of the same request
(``cache_prompt: false``), both at temperature 0 with the log-probability of every token. A cache that changes
nothing gives the same tokens with the same log-probabilities. Prints one JSON object: how many chats were compared,
and those that differed (their label, both answers' tokens).

  dropped-turn  one conversation, then the same one with its first exchange dropped: a long later turn that the
                server finds in its cache at another position (what --cache-reuse shifts into place);
  isolation     SESSIONS conversations, each with its own secret in its system prompt, ROUNDS rounds of one new
                turn each, all sessions at once: more sessions than slots, so slots go idle, are saved to the
                host-memory cache and restored into other slots between rounds.

Standard library only: it runs on the hosts' Debian python3. The key is read from KEY_FILE, never printed.
"""

from __future__ import annotations

import json
import random
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SESSIONS = 6
ROUNDS = 4
ANSWER_TOKENS = 8
LOGPROB_TOLERANCE = 0.01  # fp32 on a different batch split: the same answer differs by far less than this
WORDS = ("amber", "basalt", "cedar", "delta", "ember", "fjord", "granite", "harbor", "iris", "juniper", "kelp",
         "lagoon", "meadow", "nectar", "obsidian", "prairie", "quartz", "ridge", "sierra", "tundra")  # fmt: skip


def filler(seed: int, words: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words))


class Server:
    def __init__(self, port: int, key: str):
        self.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        self.key = key

    def answer(self, messages: list[dict], cached: bool) -> list[tuple[str, float]]:
        body = {
            "messages": messages,
            "max_tokens": ANSWER_TOKENS,
            "temperature": 0,
            "seed": 1,
            "logprobs": True,
            "top_logprobs": 1,
            "cache_prompt": cached,
        }
        request = urllib.request.Request(
            self.url,
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"},
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            choice = json.load(response)["choices"][0]
        return [(item["token"], item["logprob"]) for item in choice["logprobs"]["content"]]


def same(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> bool:
    return [t for t, _ in a] == [t for t, _ in b] and all(
        abs(x - y) <= LOGPROB_TOLERANCE for (_, x), (_, y) in zip(a, b, strict=True)
    )


def compare(server: Server, label: str, messages: list[dict]) -> dict | None:
    """The request as served, then freshly evaluated; the served answer is what the conversation continues with."""
    served = server.answer(messages, cached=True)
    fresh = server.answer(messages, cached=False)
    if same(served, fresh):
        return {"label": label, "answer": "".join(t for t, _ in served)}
    return {"label": label, "differs": True, "served": served, "fresh": fresh}


def dropped_turn(server: Server) -> list[dict]:
    system = {"role": "system", "content": "You are a careful assistant. " + filler(1, 60)}
    first = {"role": "user", "content": "Some notes first: " + filler(2, 250)}
    reply = {"role": "assistant", "content": "Noted. " + filler(3, 40)}
    later = {"role": "user", "content": "Now the long part: " + filler(4, 400) + " What is the last word?"}
    return [
        compare(server, "whole conversation", [system, first, reply, later]),
        compare(server, "first exchange dropped", [system, later]),
    ]


def isolation(server: Server) -> list[dict]:
    rng = random.Random(7)
    secrets = [f"{rng.getrandbits(64):016x}" for _ in range(SESSIONS)]
    histories = [
        [{"role": "system", "content": f"The secret of session {n} is {secret}. {filler(10 + n, 120)}"}]
        for n, secret in enumerate(secrets)
    ]
    results = []
    for round_ in range(ROUNDS):

        def turn(n: int, round_=round_) -> dict:
            history = histories[n]
            history.append({"role": "user", "content": f"Round {round_}: {filler(100 * n + round_, 30)}"})
            result = compare(server, f"session {n} round {round_}", list(history))
            history.append({"role": "assistant", "content": result.get("answer", "")})
            return result

        with ThreadPoolExecutor(max_workers=SESSIONS) as pool:
            results += list(pool.map(turn, range(SESSIONS)))
    return results


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[3] not in ("dropped-turn", "isolation"):
        raise SystemExit(f"usage: {argv[0]} PORT KEY_FILE dropped-turn|isolation")
    server = Server(int(argv[1]), Path(argv[2]).read_text().strip())
    results = dropped_turn(server) if argv[3] == "dropped-turn" else isolation(server)
    print(json.dumps({"compared": len(results), "differing": [r for r in results if r.get("differs")]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
