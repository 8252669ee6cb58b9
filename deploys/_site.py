"""The one place deploys turn the inventory into role configs."""

from __future__ import annotations

from pyinfra import host, inventory
from pyinfra.facts.deb import DebPackages

from roles.base.facts import HostHardware
from roles.base.hardware import HardwareMismatch, mismatches
from roles.inventory import site_from_inventory
from roles.site import Site


def this_site() -> Site:
    # Validated again here: pyinfra --data overrides are applied after the inventory file's own check.
    site = site_from_inventory(inventory)
    _check_hardware(site)
    return site


def _check_hardware(site: Site) -> None:
    """The declared RAM and cores size every host: read what each has before any operation is even prepared, and
    name every host that disagrees at once. pyinfra keeps facts per host, so each host's are read once a run."""
    problems = []
    for each in sorted(inventory.get_active_hosts(), key=lambda h: h.name):
        tolerance = site.settings[each.name]["base"].hw_memory_tolerance_percent
        problems += [(each.name, p) for p in mismatches(site.host(each.name), each.get_fact(HostHardware), tolerance)]
    if problems:
        raise HardwareMismatch(problems)


def installed_packages() -> frozenset[str]:
    return frozenset(host.get_fact(DebPackages) or {})
