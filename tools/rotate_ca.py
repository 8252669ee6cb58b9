"""Rotate the site CA without refusing a chat: both CAs are trusted by every host while certificates move over.

    python tools/rotate_ca.py --inventory inventory/site.py begin|switch|finish|status   (make rotate-ca STEP=...)

1. begin   makes the new CA (limited to the site's domain and pki_permitted_networks); the next deploy has every host
           trust both. Give people the new CA certificate now (its fingerprint is printed).
2. switch  makes the new CA the one that signs; the next deploy reissues every certificate from it (the gateway
           restarts once, for its own). Both CAs are still trusted, so old and new certificates meet only peers that
           accept them.
3. finish  retires the old CA (its certificate kept under retired/ in the state directory, its key destroyed); the
           next deploy has the hosts trust the new one alone.

Run a whole-site deploy after each step (`pyinfra -y inventory/site.py deploys/full.py`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives import hashes  # noqa: E402

from roles.common.ca import RotationError, rotate, rotation_step  # noqa: E402
from roles.inventory.load import load_inventory, site_from_inventory  # noqa: E402

NEXT = {
    "begin": "deploy the whole site: every host then trusts both CAs. Give people the new CA certificate "
    "(fingerprint above), then: make rotate-ca STEP=switch",
    "switch": "deploy the whole site: every certificate is reissued by the new CA. Then: make rotate-ca STEP=finish",
    "finish": "deploy the whole site: the hosts then trust the new CA alone. People may remove the old one.",
}


def fingerprint(ca) -> str:
    return ca.cert.fingerprint(hashes.SHA256()).hex(":").upper()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventory/site.py")
    parser.add_argument("step", choices=("begin", "switch", "finish", "status"))
    args = parser.parse_args(argv)
    site = site_from_inventory(load_inventory(args.inventory, cwd=str(REPO)))
    issuance = site.pki_config(site.topology.hosts[0].name).issuance
    directory = Path(issuance.ca_dir)
    if args.step == "status":
        print(f"rotation: {rotation_step(directory)}")
        return 0
    try:
        ca = rotate(directory, args.step, issuance.organization, issuance.ca_days, issuance.scope)
    except RotationError as error:
        print(f"rotate-ca: {error}", file=sys.stderr)
        return 1
    print(f"{args.step}: done. CA {ca.cert.subject.rfc4514_string()}, SHA-256 fingerprint {fingerprint(ca)}")
    print(f"next: {NEXT[args.step]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
