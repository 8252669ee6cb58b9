"""The one place deploys turn the inventory into role configs."""

from __future__ import annotations

from pyinfra import host, inventory
from pyinfra.facts.deb import DebPackages

from roles.inventory import site_from_inventory
from roles.site import Site


def this_site() -> Site:
    # Validated again here: pyinfra --data overrides are applied after the inventory file's own check.
    return site_from_inventory(inventory)


def installed_packages() -> frozenset[str]:
    return frozenset(host.get_fact(DebPackages) or {})
