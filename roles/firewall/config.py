"""What the firewall role deploys on one box: its inbound LAN rules, one nftables table of the appliance's own."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from roles.common.settings import Problem
from roles.common.templates import render
from roles.firewall.settings import FirewallSettings

TABLE = "clawlan"  # `table inet clawlan`: the appliance's rules, replaced whole; other tables are never touched
STAGED = "/etc/clawlan/firewall.nft.next"  # the deploy's ruleset, checked by `nft -c` before it is loaded
RULES = "/etc/clawlan/firewall.nft"  # the ruleset in service: loaded at boot
PREVIOUS = "/etc/clawlan/firewall.nft.previous"  # kept while a new ruleset waits for its confirmation
LOADED = "/etc/clawlan/firewall.loaded"  # `nft -s list table` once confirmed: what the live table is held to
APPLY = "/usr/local/lib/clawlan/firewall-apply"
UNIT = "clawlan-firewall.service"  # loads RULES at boot
ROLLBACK_UNIT = "clawlan-firewall-rollback"  # a transient timer: the previous ruleset comes back unless confirmed
# A new ruleset is confirmed only by a fresh SSH connection from the control machine, through it. If the deploy dies
# (or is killed) before that, the previous ruleset comes back by itself after this long.
ROLLBACK_S = 60
DROPPED_COUNTER = "dropped"  # named counter: inbound packets no rule admitted


@dataclass(frozen=True)
class Opening:
    """One service of the box on its LAN address, and who may open it."""

    service: str  # the rule's comment, and how a report names it
    port: int
    sources: tuple[str, ...]  # IPv4 addresses and networks


@dataclass(frozen=True)
class FirewallConfig:
    host: str
    address: str
    ssh_port: int
    openings: tuple[Opening, ...]  # SSH first
    admin_networks: tuple[str, ...]

    def ruleset(self) -> str:
        """The nftables file: what the box admits, as one table of the appliance's own."""
        return render("firewall/clawlan.nft.j2", host=self.host, address=self.address, table=TABLE,
                      dropped=DROPPED_COUNTER, openings=self.openings)  # fmt: skip


def opening(service: str, port: int, sources) -> Opening:
    """Sources collapsed (a host inside an allowed network adds nothing) and in a stable order: the ruleset, and so
    the deploy's diff, depends on what is allowed, not on how the inventory lists it."""
    networks = ipaddress.collapse_addresses(ipaddress.ip_network(source) for source in sources)
    return Opening(service, port, tuple(str(n.network_address) if n.prefixlen == 32 else str(n) for n in networks))


def build_firewall_config(settings: FirewallSettings, host: str, address: str, ssh_port: int,
                          services: tuple[Opening, ...]) -> FirewallConfig:  # fmt: skip
    """``services``: what the box's roles serve on its LAN address and to whom, as the site model says."""
    return FirewallConfig(
        host=host,
        address=address,
        ssh_port=ssh_port,
        openings=(opening("ssh", ssh_port, settings.admin_networks), *services),
        admin_networks=settings.admin_networks,
    )


def control_path_problem(settings: FirewallSettings, host: str, control_address: str) -> Problem | None:
    """The deploy's own SSH connection comes from ``control_address``: a ruleset that did not admit it would lock the
    control machine out of the box on the next connection."""
    if any(ipaddress.ip_address(control_address) in ipaddress.ip_network(n) for n in settings.admin_networks):
        return None
    return Problem(
        host,
        "firewall_admin_networks",
        f"none of them holds this control machine's address as the host sees it ({control_address}): the firewall "
        "would lock it out of SSH. Add it (or its network); nothing was changed",
    )
