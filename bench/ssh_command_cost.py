"""What one command costs on an open SSH connection to a lab host, with Nagle's algorithm on and off.

    python bench/ssh_command_cost.py [--host lab-back] [--runs 40]

Every pyinfra operation and every testinfra check is one or more such commands, so this is the per-command cost of
a deploy and of the compliance suite. The lab must be up (make demo). Commands, on one connection each way, as the
deploy sends them: the bare command as the login user, through `sudo -n`, and through `sudo -n -H sh -c` (pyinfra's
form). Nagle on is paramiko's default; off is roles.common.ssh.send_at_once, which the deploys and the checks use.
The two settings alternate run by run, so drift of the machine falls on both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import paramiko

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.core import INVENTORY  # noqa: E402
from lab.runner import REPO  # noqa: E402
from roles.common.ssh import send_at_once  # noqa: E402
from roles.inventory.load import load_inventory  # noqa: E402

COMMANDS = ("true", "sudo -n true", "sudo -n -H sh -c true")


def connect(data, nagle: bool) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(data.get("ssh_known_hosts_file"))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(data.get("ssh_hostname"), username=data.get("ssh_user"), key_filename=data.get("ssh_key"),
                   allow_agent=False, look_for_keys=False)  # fmt: skip
    if not nagle:
        send_at_once(client)
    return client


def once(client: paramiko.SSHClient, command: str) -> float:
    started = time.perf_counter()
    channel = client.get_transport().open_session()
    channel.exec_command(command)
    if channel.recv_exit_status() != 0:
        raise SystemExit(f"{command!r} failed on the lab host")
    channel.close()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="lab-back")
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    data = next(h for h in load_inventory(str(INVENTORY), cwd=str(REPO)) if h.name == args.host).data
    clients = {nagle: connect(data, nagle) for nagle in (True, False)}
    times: dict[tuple[str, bool], list[float]] = {(c, n): [] for c in COMMANDS for n in (True, False)}
    for _ in range(args.runs):
        for command in COMMANDS:
            for nagle, client in clients.items():
                times[command, nagle].append(once(client, command))
    print(f"one command on an open connection to {args.host}, {args.runs} runs each, medians:")
    print(f"  {'command':<24} {'Nagle on':>9} {'off':>9} {'on/off':>7}")
    for command in COMMANDS:
        on, off = (statistics.median(times[command, nagle]) for nagle in (True, False))
        print(f"  {command:<24} {on * 1000:>6.1f} ms {off * 1000:>6.1f} ms {on / off:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
