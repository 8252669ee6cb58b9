"""python -m lab [--inventory FILE] {up,down,status,reboot,ssh HOST [COMMAND...]}"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lab.core import INVENTORY, Lab, LabError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description="The podman lab of a lab inventory.")
    parser.add_argument(
        "--inventory",
        type=Path,
        default=INVENTORY,
        help="the lab inventory whose hosts to run (default: inventory/lab.py, one frontend and one backend; "
        "inventory/lab_scaleout.py adds a second backend)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="create and start the lab hosts (idempotent)")
    commands.add_parser("down", help="remove the hosts, network and volumes; restore kernel settings")
    commands.add_parser("status", help="show each host's container and sshd state")
    commands.add_parser("reboot", help="power-cycle the hosts: stop, reset kernel settings, start")
    ssh = commands.add_parser("ssh", help="open a shell (or run a command) on a lab host")
    ssh.add_argument("host")
    ssh.add_argument("remote_command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    try:
        lab = Lab(log=lambda message: print(message, file=sys.stderr, flush=True), inventory=args.inventory.resolve())
        if args.command == "ssh":
            command = lab.ssh_command(args.host, *args.remote_command)
            os.execvp(command[0], command)
        with lab.locked():
            if args.command == "status":
                rows = lab.status()
                columns = list(rows[0])
                widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
                for row in [{c: c for c in columns}, *rows]:
                    print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())
            else:
                getattr(lab, args.command)()
    except LabError as error:
        print(f"lab: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
