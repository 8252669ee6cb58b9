"""Role firewall: nftables on every box, in the appliance's own table; inbound on the LAN only what the box's roles
serve, to whom they serve it; everything else dropped and counted.

A new ruleset is checked (``nft -c``) before it is loaded, and kept only once a fresh SSH connection from the
control machine got through it; otherwise (or if the deploy dies first) the previous one comes back by itself.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra.api import deploy

from roles.common.files import host_files
from roles.common.packages import install_packages
from roles.common.templates import rendered
from roles.common.units import service
from roles.firewall.config import APPLY, RULES, STAGED, TABLE, UNIT, FirewallConfig
from roles.firewall.operations import ruleset

PROGRAMS = Path(__file__).resolve().parent / "programs"  # run on the hosts


@deploy("Firewall")
def firewall(config: FirewallConfig, installed_packages: frozenset[str] = frozenset()):
    install_packages("Install nftables", ["nftables"], installed_packages)
    unit_path = f"/etc/systemd/system/{UNIT}"
    known = host_files("/etc/clawlan", STAGED, APPLY, unit_path)
    known.directory(name="Create /etc/clawlan", path="/etc/clawlan", mode="755")
    known.put(name="Install the firewall's guarded loader", src=str(PROGRAMS / "firewall-apply.sh"), dest=APPLY,
              mode="755")  # fmt: skip
    text = config.ruleset()
    known.put(name=f"Stage the firewall's ruleset ({STAGED})", src=StringIO(text), dest=STAGED, mode="644")
    ruleset(
        name="Load the firewall's ruleset: checked, and kept only if SSH from this machine still gets in",
        ruleset_text=text,
        address=config.address,
        ssh_port=config.ssh_port,
    )
    unit = known.put(
        name=f"Install {UNIT} (the ruleset at boot)",
        src=rendered("firewall/clawlan-firewall.service.j2", table=TABLE, rules=RULES),
        dest=unit_path,
        mode="644",
    )
    # Started only after the guarded load: starting it loads the same (confirmed) file again.
    service(name=f"Keep {UNIT} enabled for boot", unit=UNIT, daemon_reload_on=(unit,))
