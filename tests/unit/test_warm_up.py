"""The warm-up after a model server's start: the capture service keeps the gateway's prompt prefix from the ingress's
mirror of every chat (never a person's message), the warm-up sends it once the server is ready and then marks the
server warm, and only then do the balancers admit it."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from roles.model_server.config import (
    ALL_SLOTS_MARKER,
    CAPTURE_SOCKET,
    KEY_FILE,
    PREFIX_FILE,
    RUNTIME_DIR,
    USER,
    VENV,
    WARM_MARKER,
)
from roles.model_server.deploy import (
    AWAIT_READY,
    CAPTURE,
    WARM_UP,
    capture_service_text,
    capture_socket_text,
    unit_text,
)
from roles.model_server.settings import LLAMA_CPP_PYTHON, LLAMA_SERVER, VULKAN
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
warm_up = program("warm-up")

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


# --- the warm-up ----------------------------------------------------------------------------------------------


def test_the_warm_up_chat_is_the_captured_prefix_and_one_character_for_one_token():
    body = warm_up.request_body({"messages": [SYSTEM], "tools": TOOLS, "tool_choice": "auto"})
    assert body["messages"] == [SYSTEM, {"role": "user", "content": "."}]
    assert body["tools"] == TOOLS and body["tool_choice"] == "auto"
    assert (body["max_tokens"], body["temperature"], body["stream"]) == (1, 0, False)
    assert "tools" not in warm_up.request_body({"messages": [SYSTEM]})


@pytest.mark.parametrize(
    "prefix", [{}, [], {"messages": []}, {"messages": [{"role": "user", "content": "x"}]}, {"messages": [SYSTEM, 1]}]
)
def test_a_prefix_that_is_not_what_the_capture_writes_is_refused(prefix):
    with pytest.raises(ValueError, match="not a captured prompt prefix"):
        warm_up.request_body(prefix)


class FakeServer:
    """llama-server's chat endpoint on loopback: records each request and answers ``status`` with ``answer``."""

    def __init__(self, status=200, answer=None):
        self.requests: list[tuple[str, dict, bytes]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.requests.append((self.path, dict(self.headers), body))
                reply = json.dumps(answer if answer is not None else {"timings": {"prompt_n": 42}}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = str(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def captured(tmp_path):
    """A captured prefix and a key file, as the warm-up finds them on the backend."""
    prefix_file, key_file = tmp_path / "prefix.json", tmp_path / "model-server.key"
    prefix_file.write_bytes(capture.encoded({"messages": [SYSTEM], "tools": TOOLS}))
    key_file.write_text("s3cret-key\n")
    return prefix_file, key_file


def test_the_warm_up_sends_the_captured_prefix_with_the_key_from_its_file(captured):
    prefix_file, key_file = captured
    with FakeServer() as server:
        said = warm_up.warm(str(prefix_file), str(key_file), server.port)
    ((path, headers, body),) = server.requests
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer s3cret-key"
    assert json.loads(body) == warm_up.request_body({"messages": [SYSTEM], "tools": TOOLS})
    assert said.startswith("warmed the gateway's prompt prefix (1 system message(s), 2 tool(s)): 42 tokens")


def test_the_first_warm_up_goes_to_slot_0_and_the_others_each_to_their_own(captured):
    prefix_file, key_file = captured
    with FakeServer() as server:
        first = warm_up.warm(str(prefix_file), str(key_file), server.port)
        warm_up.warm_other_slots(str(prefix_file), str(key_file), server.port, 4)
    sent = [json.loads(body) for _, _, body in server.requests]
    assert [body["id_slot"] for body in sent] == [0, 1, 1, 2, 2, 3, 3]
    assert "in slot" not in first
    # Each other slot gets a one-token chat first: its start saves slot 0's warm prefix to the server's host-memory
    # cache, and the slot then holds a prompt unlike it, so its warm-up chat copies the prefix from there.
    warm_up_chat = {"messages": [SYSTEM], "tools": TOOLS}
    for slot in (1, 2, 3):
        assert sent[2 * slot - 1] == warm_up.handover_body(slot)
        assert sent[2 * slot] == warm_up.request_body(warm_up_chat, slot)
    assert sent[1]["max_tokens"] == 1 and [m["role"] for m in sent[1]["messages"]] == ["user"]


def test_warming_the_other_slots_says_each_and_stops_at_the_first_refusal(captured, capsys):
    prefix_file, key_file = captured
    with FakeServer(503, {"error": {"message": "loading"}}) as server:
        outcome = warm_up.warm_other_slots(str(prefix_file), str(key_file), server.port, 4)
    assert outcome.startswith("slots 1 to 3 left cold: warm-up refused (503")
    assert len(server.requests) == 1  # the hand-over refused: slots 1 to 3 are left cold, not hammered
    assert "slot 1: warm-up refused (503" in capsys.readouterr().err
    with FakeServer() as server:
        assert warm_up.warm_other_slots(str(prefix_file), str(key_file), server.port, 3) == "slots 1 to 2 warmed"
    said = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in said] == [
        "warmed the gateway's prompt prefix in slot 1",
        "warmed the gateway's prompt prefix in slot 2",
    ]


def test_a_new_site_has_nothing_to_warm_and_says_so(tmp_path):
    with pytest.raises(warm_up.NothingToWarm) as nothing:
        warm_up.warm(str(tmp_path / "prefix.json"), str(tmp_path / "key"), "1")
    assert "no prompt prefix captured yet" in str(nothing.value) and "nothing to warm" in str(nothing.value)
    marker, every = tmp_path / "warm", tmp_path / "warm-all-slots"
    result = run_warm_up("--prefix", str(tmp_path / "prefix.json"), "--key-file", str(tmp_path / "key"), "--slots",
                         "4", "--all-slots-marker", str(every), str(marker), port=closed_port())  # fmt: skip
    assert result.returncode == 0 and "nothing to warm" in result.stdout and not result.stderr
    assert "nothing to warm" in marker.read_text() and every.read_text() == "no other slot to warm\n"


@pytest.mark.parametrize("status", [400, 500, 503])
def test_a_refused_warm_up_says_why(captured, status):
    prefix_file, key_file = captured
    answer = {"error": {"message": "the template failed"}}
    with FakeServer(status, answer) as server, pytest.raises(warm_up.Cold) as cold:
        warm_up.warm(str(prefix_file), str(key_file), server.port)
    assert f"refused ({status}" in str(cold.value) and "the template failed" in str(cold.value)
    assert "s3cret-key" not in str(cold.value)


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def run_warm_up(*args: str, port: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PROGRAMS / "warm-up.py"), *args], env={**os.environ, "PORT": port},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_server_is_marked_warm_even_when_the_warm_up_fails(captured, tmp_path):
    """It serves, only cold: a failed warm-up must not keep the backend out of the pool, nor fail its start."""
    prefix_file, key_file = captured
    marker = tmp_path / "run" / "warm"
    marker.parent.mkdir()
    result = run_warm_up("--prefix", str(prefix_file), "--key-file", str(key_file), str(marker), port=closed_port())
    assert result.returncode == 0, result.stderr
    assert "warm-up failed" in result.stderr and "cold" in result.stderr
    assert marker.exists()


def test_the_marker_follows_the_warm_up(captured, tmp_path):
    prefix_file, key_file = captured
    marker = tmp_path / "warm"
    with FakeServer() as server:
        result = run_warm_up("--prefix", str(prefix_file), "--key-file", str(key_file), str(marker), port=server.port)
    assert result.returncode == 0 and "42 tokens evaluated" in result.stdout
    assert len(server.requests) == 1 and marker.exists()


def test_without_a_prefix_only_the_marker_is_made(tmp_path):
    """llama-cpp-python: nothing to warm, admitted once ready."""
    result = run_warm_up(str(tmp_path / "warm"), port=closed_port())
    assert result.returncode == 0 and (tmp_path / "warm").exists()


def test_a_marker_that_cannot_be_made_fails_the_start(tmp_path):
    """Else the balancers would never admit the backend, and nothing would say why."""
    result = run_warm_up(str(tmp_path / "no-runtime-directory" / "warm"), port=closed_port())
    assert result.returncode == 1 and "cannot mark the server warm" in result.stderr


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


def test_the_ingress_and_the_model_server_agree_on_the_socket_and_the_marker():
    site = site_with()
    ingress = site.ingress_config("back")
    assert (ingress.capture_socket, ingress.warm_marker) == (CAPTURE_SOCKET, WARM_MARKER)


# --- the model server's unit ------------------------------------------------------------------------------------


def unit(**data):
    return unit_text(site_with(back={f"model_server_{k}": v for k, v in data.items()}).model_server_config("back"))


@pytest.mark.parametrize("data", [{}, {"compute": VULKAN, "vulkan_driver": "lavapipe"}])
def test_llama_server_is_warmed_after_it_is_ready_and_marked_warm_last(data):
    """After the readiness check (and a GPU build's start-up record): the checkpoint needs a loaded model, and the
    marker is the last thing a start does."""
    found = service_values(unit(**data), "ExecStartPost")
    assert found[0].endswith(AWAIT_READY)
    # The key's file, never the key: the warm-up runs as the server's user, which may read it.
    warm = (
        f"{VENV}/bin/python {WARM_UP} --prefix {PREFIX_FILE} --key-file {KEY_FILE} --slots 4"
        f" --all-slots-marker {ALL_SLOTS_MARKER} {WARM_MARKER}"
    )
    assert found[-1] == warm


def test_the_warm_up_knows_every_slot_of_the_server():
    assert "--slots 6 " in service_values(unit(parallel_slots=6), "ExecStartPost")[-1]


def test_llama_cpp_python_is_marked_warm_once_ready():
    found = service_values(unit(engine=LLAMA_CPP_PYTHON), "ExecStartPost")
    assert found[0].endswith(AWAIT_READY)
    assert found[-1] == f"{VENV}/bin/python {WARM_UP} {WARM_MARKER}"


@pytest.mark.parametrize("engine", [LLAMA_SERVER, LLAMA_CPP_PYTHON])
def test_the_marker_lives_in_a_directory_systemd_removes_when_the_server_stops(engine):
    text = unit(engine=engine)
    assert service_values(text, "RuntimeDirectory") == [RUNTIME_DIR]
    assert Path(WARM_MARKER).parent == Path("/run") / RUNTIME_DIR
    assert service_values(text, "RuntimeDirectoryMode") == ["0755"]  # nginx's workers stat the marker
    assert not service_values(text, "RuntimeDirectoryPreserve")  # "restart" or "yes" would keep it across a restart


def test_the_start_may_take_the_models_load_and_the_warm_up():
    """The readiness check gives up after 880 s (await-ready.py), the warm-up after its own timeout: systemd must
    wait for both, or a slow start would be killed during its warm-up."""
    (timeout,) = service_values(unit(), "TimeoutStartSec")
    assert int(timeout) > 880 + warm_up.TIMEOUT_S + 30


def test_without_other_slots_to_warm_both_markers_are_made_at_once(tmp_path, monkeypatch):
    """llama-cpp-python, one slot, or nothing captured yet: no background child, and nothing to wait for."""
    monkeypatch.setenv("PORT", "1")
    marker, every = tmp_path / "warm", tmp_path / "warm-all-slots"
    prefix, key = tmp_path / "none.json", tmp_path / "key"
    warm_up.main(["--prefix", str(prefix), "--key-file", str(key), "--slots", "4", "--all-slots-marker", str(every),
                  str(marker)])  # fmt: skip
    assert "no prompt prefix captured yet" in marker.read_text()
    assert every.read_text() == "no other slot to warm\n"


def test_the_background_child_marks_every_slot_done(captured, tmp_path, monkeypatch):
    prefix_file, key_file = captured
    every = tmp_path / "warm-all-slots"
    with FakeServer() as server:
        monkeypatch.setenv("PORT", server.port)
        warm_up.main(["--prefix", str(prefix_file), "--key-file", str(key_file), "--slots", "3",
                      "--all-slots-marker", str(every), "--other-slots"])  # fmt: skip
    assert [json.loads(body)["id_slot"] for _, _, body in server.requests] == [1, 1, 2, 2]  # hand-over, warm-up
    assert every.read_text() == "slots 1 to 2 warmed\n"
