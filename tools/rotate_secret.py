"""Replace one of the site's secrets on the control machine; the next deploy puts the new one on the hosts.

    python tools/rotate_secret.py --inventory inventory/site.py gateway-token    (make rotate-token)
    python tools/rotate_secret.py --inventory inventory/site.py monitor-password (make rotate-token SECRET=...)
    python tools/rotate_secret.py --inventory inventory/site.py model-api-key

The old secret is gone from the control machine at once, and stops working on the hosts with the next deploy
(`pyinfra -y inventory/site.py deploys/full.py`), which restarts what reads it. People then use the new gateway token
(or monitor password) from the file this prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from roles.common.secrets import replace_site_secret  # noqa: E402
from roles.inventory.load import load_inventory, site_from_inventory  # noqa: E402

SECRETS = {
    "gateway-token": lambda site: site.control.gateway_token_file,
    "monitor-password": lambda site: site.control.monitor_web_password_file,
    "model-api-key": lambda site: site.control.model_server_api_key_file,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventory/site.py")
    parser.add_argument("secret", choices=tuple(SECRETS))
    args = parser.parse_args(argv)
    site = site_from_inventory(load_inventory(args.inventory, cwd=str(REPO)))
    path = SECRETS[args.secret](site)
    replace_site_secret(path)
    print(f"{args.secret}: a new one is in {path} (0600); the old one works until the next deploy.")
    print(f"next: pyinfra -y {args.inventory} deploys/full.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
