"""The prompt prefix capture: it keeps the gateway's system prompt and tools from the ingress's mirror of every chat,
never a person's message, for the model server's warm-up after a start."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from roles.model_server.config import CAPTURE_SOCKET, KEY_FILE, PREFIX_FILE, USER
from roles.model_server.deploy import CAPTURE, capture_service_text, capture_socket_text
from tests.support.sites import site_with
from tests.support.units import directives

PROGRAMS = Path(__file__).resolve().parents[2] / "roles/model_server/programs"


def program(name: str):
    """A program of the role's, imported as a module (its name has a hyphen); its main does not run."""
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), PROGRAMS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


capture = program("prefix-capture")

SYSTEM = {"role": "system", "content": "You are the household's assistant. Today is 2026-03-01."}
TOOLS = [
    {"type": "function", "function": {"name": "read", "parameters": {"type": "object", "required": ["path"]}}},
    {"type": "function", "function": {"name": "web_search", "parameters": {"type": "object"}}},
]
PRIVATE = "my doctor said the results are"  # what a person wrote: never kept


def chat(*messages, **fields) -> bytes:
    body = {"model": "local-model", "messages": list(messages), "stream": True, "max_tokens": 4096, **fields}
    return json.dumps(body).encode()


# --- the capture: what of a chat it keeps --------------------------------------------------------------------


def test_the_leading_system_messages_are_kept_and_nothing_after_them():
    later = {"role": "system", "content": "a system message after the person's is part of the conversation"}
    body = chat(SYSTEM, {"role": "user", "content": PRIVATE}, {"role": "assistant", "content": "I see"}, later)
    assert capture.prefix(body) == {"messages": [SYSTEM]}
    two = {"role": "system", "content": "Tools follow."}
    assert capture.prefix(chat(SYSTEM, two, {"role": "user", "content": PRIVATE})) == {"messages": [SYSTEM, two]}


def test_tools_and_tool_choice_are_kept_when_the_chat_has_them_and_nothing_else_of_it():
    kept = capture.prefix(chat(SYSTEM, {"role": "user", "content": PRIVATE}, tools=TOOLS, tool_choice="auto"))
    assert kept == {"messages": [SYSTEM], "tools": TOOLS, "tool_choice": "auto"}
    assert PRIVATE not in capture.encoded(kept).decode()
    assert "stream" not in kept and "max_tokens" not in kept and "model" not in kept


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"prompt": "a completion, no chat"}',
        b'{"messages": "not a list"}',
        b'{"messages": [{"role": "system", "content": NaN}]}',  # Python's json would take it; JSON has no NaN
        chat({"role": "user", "content": PRIVATE}),  # the probe's chats: no system message, nothing to keep
        chat("a bare string", SYSTEM),
        b"[" * 100_000,
    ],
)
def test_what_is_no_chat_with_a_system_message_is_ignored(body):
    assert capture.prefix(body) is None


def test_the_tools_keep_the_order_the_gateway_sent_their_keys_in():
    """The chat template renders each schema as it comes: another key order is another prompt."""
    tool = {"type": "function", "function": {"parameters": {"type": "object"}, "name": "zeta", "description": "é"}}
    kept = capture.prefix(chat(SYSTEM, tools=[tool]))
    assert capture.encoded(kept).decode() == json.dumps(kept, ensure_ascii=False, separators=(",", ":")) + "\n"
    assert list(json.loads(capture.encoded(kept))["tools"][0]["function"]) == ["parameters", "name", "description"]


def test_the_prefix_is_written_whole_private_and_only_when_it_changed(tmp_path):
    path = tmp_path / "prefix.json"
    first = capture.encoded({"messages": [SYSTEM]})
    assert capture.keep(str(path), first)
    assert path.read_bytes() == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefix.json"]  # nothing left beside it
    before = path.stat()
    assert not capture.keep(str(path), first)  # the same prefix: the file is not touched
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    midnight = capture.encoded({"messages": [{**SYSTEM, "content": "... Today is 2026-03-02."}]})
    assert capture.keep(str(path), midnight)
    assert path.read_bytes() == midnight
    assert path.stat().st_ino != before.st_ino  # renamed over it, never written in place


def test_a_partial_file_left_by_a_crash_is_replaced(tmp_path):
    path = tmp_path / "prefix.json"
    (tmp_path / "prefix.json.partial").write_bytes(b'{"messages": [')
    assert capture.keep(str(path), b"{}\n")
    assert path.read_bytes() == b"{}\n" and not (tmp_path / "prefix.json.partial").exists()


# --- the capture as systemd runs it: handed a listening socket ------------------------------------------------


def post(path: Path, body: bytes, length: int | None = None) -> int:
    """The status of a POST over the unix socket ``path``, as nginx sends a mirror (HTTP/1.0, a length)."""
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(10)
        client.connect(str(path))
        head = f"POST / HTTP/1.0\r\nHost: localhost\r\nContent-Length: {len(body) if length is None else length}\r\n"
        client.sendall(head.encode() + b"\r\n" + (body if length is None else b""))
        return int(client.makefile("rb").readline().split()[1])


# What systemd does before it runs a socket-activated service: the socket as fd 3, and LISTEN_PID and LISTEN_FDS.
SOCKET_ACTIVATE = """
import os, sys
listener = int(sys.argv[1])
if listener != 3:
    os.dup2(listener, 3)
    os.close(listener)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


@pytest.fixture
def running_capture(tmp_path):
    """The capture program on a listening socket it is handed as systemd hands it."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "capture.sock"))
    listener.listen()
    state = tmp_path / "state"
    state.mkdir()
    fd = listener.fileno()
    process = subprocess.Popen(
        [sys.executable, "-c", SOCKET_ACTIVATE, str(fd), str(PROGRAMS / "prefix-capture.py"),
         str(state / "prefix.json"), "4096"],
        pass_fds=(fd,), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    listener.close()
    try:
        yield tmp_path / "capture.sock", state / "prefix.json", process
    finally:
        process.kill()
        process.wait(timeout=10)
        process.stdout.close()


def test_the_running_capture_keeps_the_prefix_of_a_mirrored_chat(running_capture):
    sock, prefix_file, process = running_capture
    conversation = (SYSTEM, {"role": "user", "content": PRIVATE}, {"role": "assistant", "content": "Noted."})
    assert post(sock, chat(*conversation, tools=TOOLS[:1])) == 204
    assert json.loads(prefix_file.read_text()) == {"messages": [SYSTEM], "tools": TOOLS[:1]}
    assert PRIVATE not in prefix_file.read_text() and "Noted." not in prefix_file.read_text()
    kept = prefix_file.read_bytes()
    assert post(sock, b"{ not json") == 204  # ignored, and said nothing
    assert post(sock, chat({"role": "user", "content": "no system message"})) == 204
    assert post(sock, b"x" * 5000) == 413  # over MAX_BYTES: refused unread
    assert post(sock, b"", length=5000) == 413
    assert prefix_file.read_bytes() == kept
    process.kill()
    process.wait(timeout=10)
    log = process.stdout.read()
    assert log.count("kept the gateway's prompt prefix: 1 system message(s), 1 tool(s)") == 1
    assert PRIVATE not in log


def test_the_capture_refuses_to_run_without_a_socket_from_systemd(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LISTEN_")}
    result = subprocess.run(
        [sys.executable, str(PROGRAMS / "prefix-capture.py"), str(tmp_path / "prefix.json"), "4096"],
        env=environment, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and "clawlan-prefix-capture.socket" in result.stderr


# --- the capture's units --------------------------------------------------------------------------------------


def service_values(text: str, key: str) -> list[str]:
    return [value for k, value in directives(text) if k == key]


def test_only_nginxs_workers_may_send_the_capture_a_chat():
    config = site_with().model_server_config("back")
    text = capture_socket_text(config)
    for line in (f"ListenStream={CAPTURE_SOCKET}", "SocketUser=root", "SocketGroup=www-data", "SocketMode=0660"):
        assert f"\n{line}\n" in text, line


def test_the_capture_runs_as_the_model_servers_user_with_no_network_and_no_key():
    text = capture_service_text(site_with(back={"mtls_max_body_mib": 24}).model_server_config("back"))
    assert service_values(text, "User") == service_values(text, "Group") == [USER]
    (command,) = service_values(text, "ExecStart")
    assert command.endswith(f"{CAPTURE} {PREFIX_FILE} {24 * 2**20}")  # no longer a body than the ingress admits
    assert service_values(text, "StateDirectory") == [Path(PREFIX_FILE).parent.name]
    assert service_values(text, "StateDirectoryMode") == ["0700"] and service_values(text, "UMask") == ["0077"]
    assert service_values(text, "RestrictAddressFamilies") == ["AF_UNIX"]
    assert service_values(text, "IPAddressDeny") == ["any"] and not service_values(text, "IPAddressAllow")
    assert service_values(text, "InaccessiblePaths") == [str(Path(KEY_FILE).parent)]  # no "-": hidden, or no start
    assert service_values(text, "PrivateUsers") == ["yes"]
    assert "Requires=clawlan-prefix-capture.socket\n" in text  # it serves the socket systemd holds, not its own
