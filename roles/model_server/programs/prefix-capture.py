"""clawlan-prefix-capture: keep the prompt prefix the gateway sends, for the model server's warm-up after a start.

The ingress (nginx) mirrors the body of every chat to this service, through the socket systemd holds for it and hands
over as it starts (clawlan-prefix-capture.socket), with none of the client's headers. Of a chat it keeps the leading
system message(s), and the tools and tool_choice if the chat has them: what the gateway puts before the person's
text, the same in every chat of every session (but for a date line, which changes at midnight). They go to FILE,
written only when they differ from what it holds. The rest of the chat, people's messages, is never kept; a body that
is no chat, or has no system message, is ignored without a word.

    prefix-capture.py FILE MAX_BYTES   (MAX_BYTES: the ingress's largest request; a longer body is refused unread)

The model server's warm-up (warm-up.py) reads FILE as the same user.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import socketserver
import sys

LISTEN_FD = 3  # systemd's first socket (SD_LISTEN_FDS_START)
# What of a chat besides its system message(s) the chat template renders before the first person's message.
KEPT = ("tools", "tool_choice")


def _not_json(constant: str):
    raise ValueError(f"{constant} is not JSON")


def prefix(body: bytes) -> dict | None:
    """The chat's messages before its first non-system one, with its tools and tool_choice if present; None for a
    body that is no chat, or a chat without a system message."""
    try:
        chat = json.loads(body, parse_constant=_not_json)
    except (ValueError, RecursionError):  # a UnicodeDecodeError is a ValueError
        return None
    messages = chat.get("messages") if isinstance(chat, dict) else None
    if not isinstance(messages, list):
        return None
    system = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "system":
            break
        system.append(message)
    if not system:
        return None
    return {"messages": system, **{key: chat[key] for key in KEPT if key in chat}}


def encoded(kept: dict) -> bytes:
    # Keys in the order the gateway sent them: the chat template renders the tools' schemas in that order.
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def keep(path: str, data: bytes) -> bool:
    """``data`` in ``path`` unless it holds it already: written beside it, synced and renamed over it, so the warm-up
    (or a power cut) finds the old prefix or the new one, never half of one. Whether it was written."""
    try:
        with open(path, "rb") as current:
            if current.read() == data:
                return False
    except FileNotFoundError:
        pass
    partial = f"{path}.partial"
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)
    directory = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself
    finally:
        os.close(directory)
    return True


class Capture(http.server.BaseHTTPRequestHandler):
    # nginx sends a mirrored body at once; a peer that stalls must not hold up the next chat's mirror for long.
    timeout = 10

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if not 0 <= length <= self.server.max_bytes:
            self.send_response(413)
            self.end_headers()
            return
        kept = prefix(self.rfile.read(length))
        if kept is not None:
            self.server.store(kept)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format, *args):
        """Quiet: a line per chat would say nothing, and nginx logs a mirror that failed."""


class CaptureServer(socketserver.UnixStreamServer):
    """One request at a time on ``listener`` (already bound and listening): each takes a millisecond or so."""

    def __init__(self, listener: socket.socket, path: str, max_bytes: int):
        super().__init__(listener.getsockname(), Capture, bind_and_activate=False)
        self.socket.close()
        self.socket = listener
        self.path, self.max_bytes = path, max_bytes

    def store(self, kept: dict) -> None:
        try:
            if keep(self.path, encoded(kept)):
                tools = kept.get("tools")
                count = len(tools) if isinstance(tools, list) else 0
                print(f"kept the gateway's prompt prefix: {len(kept['messages'])} system message(s), {count} tool(s)",
                      flush=True)  # fmt: skip
        except OSError as error:
            print(f"prompt prefix not kept in {self.path}: {error}", file=sys.stderr, flush=True)

    def handle_error(self, request, client_address):
        # One line, not socketserver's traceback: a mirror that stalled or broke off costs only that chat's capture.
        print(f"a mirrored chat was not read: {sys.exc_info()[1]!r}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    path, max_bytes = argv[1], int(argv[2])
    if os.environ.get("LISTEN_FDS") != "1" or os.environ.get("LISTEN_PID") != str(os.getpid()):
        sys.exit("no socket from systemd: start clawlan-prefix-capture.socket, which holds it")
    with CaptureServer(socket.socket(fileno=LISTEN_FD), path, max_bytes) as server:
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
