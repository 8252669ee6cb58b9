"""Small helpers for tests acting on a lab host through its testinfra connection."""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import uuid

from roles.base.deploy import HOSTS_MARKER
from roles.common.transfer import STAGING

# The backend's mutual-TLS port logs every request (templates/mtls/ingress.conf.j2), the monitor's scrapes among
# them: a test looking for its own chat picks the chat lines out.
INGRESS_LOG = "/var/log/nginx/clawlan-llm.access.log"
CHAT_REQUEST = "POST /v1/chat/completions"
HARDENING_LIMIT = 4.0  # systemd-analyze security: "OK" ends at 4.9; the roles aim lower
HOSTS_BLOCK_BEGIN = HOSTS_MARKER.format(mark="BEGIN") + "\n"
HOSTS_BLOCK_END = HOSTS_MARKER.format(mark="END") + "\n"


def put_text(host, path: str, text: str, mode: int = 0o600) -> None:
    """Write a file over SFTP: secrets used by a test never appear on a remote command line. On a host the checks
    reach through sudo, the file goes into the login's private directory first and root installs it from there."""
    sftp = host.backend.client.open_sftp()
    try:
        if not host.backend.sudo:
            sftp.putfo(io.BytesIO(text.encode()), path)
            sftp.chmod(path, mode)
            return
        private = sftp.normalize(".")
        for part in STAGING.split("/"):  # made by the login itself, as the deploy makes it
            private = f"{private}/{part}"
            with contextlib.suppress(OSError):
                sftp.mkdir(private, 0o700)
        sftp.chmod(private, 0o700)
        staged = f"{private}/{uuid.uuid4().hex}"
        sftp.putfo(io.BytesIO(text.encode()), staged)
    finally:
        sftp.close()
    host.run_expect(
        [0], f"install -m {mode:o} -- {shlex.quote(staged)} {shlex.quote(path)} && rm -f -- {shlex.quote(staged)}"
    )


def curl(host, url: str, *options: str, body: dict | None = None, config: str | None = None):
    """Run curl on ``host``; returns (http_code or None, body text, curl exit code).

    ``config`` is a curl config file on the host (for headers carrying secrets).
    """
    args = ["curl", "--silent", "--show-error", "--max-time", "30", "--output", "-", "--write-out", "\n%{http_code}"]
    if config:
        args += ["--config", config]
    if body is not None:
        args += ["--header", "Content-Type: application/json", "--data", json.dumps(body)]
    result = host.run(" ".join(shlex.quote(a) for a in (*args, *options, url)))
    text, _, code = result.stdout.rpartition("\n")
    return (int(code) if code.strip().isdigit() and code.strip() != "000" else None), text, result.rc


def unit_property(host, unit: str, prop: str) -> str:
    return host.check_output(f"systemctl show --property {prop} --value {unit}")


def main_pid(host, unit: str) -> int:
    return int(unit_property(host, unit, "MainPID"))


def listening_addresses(host) -> list[str]:
    """Local addresses of the host's listening TCP sockets, as ``ss`` prints them (``10.0.0.1:22``, ``[::]:22``)."""
    return host.check_output("ss -Hltn | awk '{print $4}'").split()


def hardening_exposure(host, unit: str) -> tuple[float, str]:
    """``systemd-analyze security``'s overall exposure of ``unit`` (0 best, 10 worst) and the whole report."""
    report = host.check_output(f"systemd-analyze security --no-pager {unit}")
    overall = next(line for line in report.splitlines() if "Overall exposure level" in line)
    return float(overall.split(f"{unit}:")[1].split()[0]), report


def hosts_block(host) -> list[str]:
    """The lines of the base role's block in the host's /etc/hosts."""
    content = host.file("/etc/hosts").content_string
    assert content.count(HOSTS_BLOCK_BEGIN) == 1 and content.count(HOSTS_BLOCK_END) == 1, (
        f"not one managed block in /etc/hosts:\n{content}"
    )
    return content.split(HOSTS_BLOCK_BEGIN, 1)[1].split(HOSTS_BLOCK_END, 1)[0].splitlines()


def chats_logged(host) -> int:
    """How many chats the backend's ingress has logged."""
    return int(host.check_output(f"grep -c {shlex.quote(CHAT_REQUEST)} {INGRESS_LOG} || true"))


def last_chat_logged(host) -> str:
    """The ingress's log line for the latest chat."""
    return host.check_output(f"grep {shlex.quote(CHAT_REQUEST)} {INGRESS_LOG} | tail -n 1")


def balancer_command(front, command: str) -> str:
    """One command to the frontend's HAProxy over its admin socket (root's), answered in text."""
    talk = (
        "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect('/run/haproxy/admin.sock'); "
        "s.sendall(sys.argv[1].encode() + b'\\n'); print(s.makefile().read())"
    )
    return front.check_output(f"python3 -c {shlex.quote(talk)} {shlex.quote(command)}")


def _pool_series(host, config, name: str) -> list[tuple[dict[str, str], str]]:
    """(labels, value) of each ``name`` series of the balancer's pool, read on the frontend from HAProxy's own
    exporter (which admits its own box)."""
    url = f"http://{config.metrics_address}:{config.metrics_port}/metrics"
    text = host.check_output(f"curl -sf --max-time 5 {shlex.quote(url)}")
    series = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels = line[line.index("{") + 1 : line.rindex("}")].split(",")
            labels = {key: value.strip('"') for key, value in (pair.split("=", 1) for pair in labels)}
            if labels.get("proxy") == config.proxy:
                series.append((labels, line.rsplit(" ", 1)[1]))
    return series


def pool_states(host, config) -> dict[str, str]:
    """{server: state} of the balancer's pool: the state whose status series is 1."""
    return {
        labels["server"]: labels["state"]
        for labels, value in _pool_series(host, config, "haproxy_server_status")
        if value == "1"
    }


def chats_in_flight(host, config) -> int:
    """Chats the balancer has on its backends or queued for them now."""
    names = ("haproxy_server_current_sessions", "haproxy_backend_current_queue")
    return sum(int(float(value)) for name in names for _, value in _pool_series(host, config, name))
