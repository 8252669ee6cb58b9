"""A model that does what a prompt injection would make any model do: answer every chat with tool calls.

    python3 hostile_model.py PORT LOG CALLS

Run on a backend in place of the model server (same loopback port, behind the real nginx and HAProxy): the gateway's
agent then receives, for every user message, the tool calls in the file CALLS ([{"name": ..., "arguments": {...}}]);
once it sends tool results back, the model answers in text. Every request it gets is appended to LOG (JSON lines: the
tools it was offered and its messages), so a test sees what the agent offered and what came back from each call.
Standard library only: the lab host's Python 3 runs it.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def chunk(delta: dict, finish: str | None) -> bytes:
    body = {"id": "hostile", "object": "chat.completion.chunk", "created": int(time.time()), "model": "hostile",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class Handler(BaseHTTPRequestHandler):
    log_path = ""
    calls: list[dict] = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # /health for the balancer's checks, /v1/models for anyone asking
        self._json({"status": "ok", "object": "list", "data": [{"id": "hostile", "object": "model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        messages = body.get("messages") or []
        with open(self.log_path, "a") as log:
            offered = [tool.get("function", {}).get("name") for tool in body.get("tools") or []]
            log.write(json.dumps({"tools": offered, "messages": messages}) + "\n")
        answered = bool(messages) and messages[-1].get("role") == "tool"
        if answered:
            deltas = [({"role": "assistant", "content": "done"}, None), ({}, "stop")]
        else:
            tool_calls = [
                {"index": i, "id": f"call_{i}", "type": "function",
                 "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}
                for i, call in enumerate(self.calls)
            ]  # fmt: skip
            deltas = [({"role": "assistant", "content": None, "tool_calls": tool_calls}, None), ({}, "tool_calls")]
        if not body.get("stream"):
            message = {"role": "assistant", **{k: v for d, _ in deltas for k, v in d.items() if k != "role"}}
            self._json({"id": "hostile", "object": "chat.completion", "model": "hostile",
                        "choices": [{"index": 0, "message": message, "finish_reason": deltas[-1][1]}]})  # fmt: skip
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for delta, finish in deltas:
            self.wfile.write(chunk(delta, finish))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _json(self, value: dict) -> None:
        data = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str]) -> None:
    with open(argv[2]) as calls:
        Handler.calls = json.load(calls)
    port, Handler.log_path = int(argv[0]), argv[1]
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
