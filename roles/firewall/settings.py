"""Settings of the firewall role (nftables on every box): inventory keys ``firewall_*``."""

from __future__ import annotations

from dataclasses import dataclass

from roles.common.settings import setting
from roles.common.values.network import PrivateNetworks


@dataclass(frozen=True)
class FirewallSettings:
    admin_networks: tuple[str, ...] = setting(
        ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
        "Who may open SSH to the boxes: the LAN; narrow it to the admins' machines (the control machine must be in).",
        PrivateNetworks(),
    )  # fmt: skip
