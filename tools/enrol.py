"""Trust a (new) box's SSH host key for one inventory host, deliberately: never on first use, never silently.

    python tools/enrol.py --inventory inventory/site.py claw-back [--fingerprint SHA256:...]   (make enrol HOST=...)

A replacement box has a new host key, and with `ssh_strict_host_key_checking = "yes"` every deploy refuses it
until it is enrolled. This reads the host's ed25519 key over SSH once (ssh-keyscan, at the inventory address),
shows its fingerprint beside the one trusted now, and writes it into the inventory's `ssh_known_hosts_file` for
the host's address and name, replacing their old lines, only when --fingerprint matches it (as the box prints it
on its console: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) or, without one, when a person at a terminal
types "yes". Without a terminal and without --fingerprint, nothing is written.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from roles.inventory.load import load_inventory  # noqa: E402
from roles.inventory.schema import SSH_PORT  # noqa: E402

KEY_TYPE = "ssh-ed25519"


class EnrolError(RuntimeError):
    pass


def fingerprint(key_body: str) -> str:
    """OpenSSH's SHA256 fingerprint of a base64 public key, as `ssh-keygen -l` prints it."""
    digest = hashlib.sha256(base64.b64decode(key_body)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def scan(address: str, port: int) -> str:
    """The host's ed25519 public key (base64 body), read over SSH once."""
    result = subprocess.run(
        ["ssh-keyscan", "-T", "10", "-p", str(port), "-t", "ed25519", address],
        capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] == KEY_TYPE:
            return fields[2]
    raise EnrolError(f"no {KEY_TYPE} host key from {address}:{port}: {result.stderr.strip() or 'no answer'}")


def _host_field(address: str, port: int) -> str:
    return address if port == SSH_PORT else f"[{address}]:{port}"


def names_of(line: str) -> set[str]:
    fields = line.split()
    return set(fields[0].split(",")) if fields and not line.startswith("#") else set()


def trusted(known_hosts: Path, names: set[str]) -> list[str]:
    """The fingerprints trusted now for any of ``names``."""
    if not known_hosts.exists():
        return []
    return [
        _readable_fingerprint(line.split()[2])
        for line in known_hosts.read_text().splitlines()
        if names_of(line) & names and len(line.split()) >= 3
    ]


def _readable_fingerprint(key_body: str) -> str:
    try:
        return fingerprint(key_body)
    except ValueError:  # binascii.Error: a damaged line, which enrolling replaces
        return "an unreadable key"


def enrol(known_hosts: Path, names: list[str], key_body: str) -> None:
    """Replace every line naming any of ``names`` by one line trusting ``key_body`` for all of them, atomically."""
    lines = known_hosts.read_text().splitlines() if known_hosts.exists() else []
    kept = [line for line in lines if not names_of(line) & set(names)]
    text = "\n".join([*kept, f"{','.join(names)} {KEY_TYPE} {key_body}"]) + "\n"
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    handle, staged = tempfile.mkstemp(dir=known_hosts.parent, prefix=f".{known_hosts.name}.")
    try:
        with os.fdopen(handle, "w") as staged_file:
            staged_file.write(text)
        os.chmod(staged, 0o644)
        os.replace(staged, known_hosts)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventory/site.py")
    parser.add_argument("host", help="the inventory name of the box to enrol")
    parser.add_argument("--fingerprint", help="the key's SHA256:... fingerprint, as the box prints it on its console")
    args = parser.parse_args(argv)
    try:
        inventory = load_inventory(str((REPO / args.inventory).resolve()), cwd=str(REPO))
        host = next((h for h in inventory if h.name == args.host), None)
        if host is None:
            raise EnrolError(
                f"no host {args.host!r} in {args.inventory}; hosts: {', '.join(h.name for h in inventory)}"
            )
        known_file = host.data.get("ssh_known_hosts_file")
        if not known_file:
            raise EnrolError(f"{args.host}: the inventory sets no ssh_known_hosts_file to enrol it in")
        known_hosts = Path(known_file).expanduser()
        if not known_hosts.is_absolute():
            known_hosts = REPO / known_hosts  # pyinfra runs from the repository, where a relative path points
        address, port = host.data.ssh_hostname, int(host.data.get("ssh_port") or SSH_PORT)
        field = _host_field(address, port)
        key_body = scan(address, port)
        found = fingerprint(key_body)
        before = trusted(known_hosts, {field, args.host})
        print(f"{args.host} ({field}): trusted now {', '.join(before) or 'nothing'}; the box presents {found}")
        if before == [found]:
            print("already enrolled: nothing to do")
            return 0
        if args.fingerprint:
            if args.fingerprint != found:
                raise EnrolError(f"the box presents {found}, not {args.fingerprint}: nothing written")
        elif sys.stdin.isatty():
            if input(f"Trust {found} for {args.host}? Type yes: ").strip() != "yes":
                raise EnrolError("not confirmed: nothing written")
        else:
            raise EnrolError("no terminal to confirm on: give --fingerprint (the box's console shows it)")
        enrol(known_hosts, [field, args.host], key_body)
        print(f"enrolled {args.host} in {known_hosts}")
        return 0
    except EnrolError as error:
        print(f"enrol: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
