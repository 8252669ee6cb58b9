"""The inventory loaded as the pyinfra CLI loads it, checked as one, and turned into the ``Site``.

``check_inventory`` runs at the end of every inventory file, so a malformed inventory stops pyinfra
while it loads, before it connects to any host; the repository's config.py has pyinfra check the loaded
inventory again (with --data overrides, and for a file that forgot the call) before the first
connection; deploys build the same ``Site`` to get each host's role configs.
"""

from __future__ import annotations

import os
from typing import Any

from roles.common.names import HostSpec
from roles.common.settings import InventoryError, Problem
from roles.inventory.rules import control_problems, data_problems, settings_problems
from roles.inventory.schema import Hosts, parse_host, text_keyed
from roles.site.settings import HostSettings
from roles.site.site import Site


def merged_data(inventory, host) -> dict[str, Any]:
    """A host's data with pyinfra's precedence: override > host > groups (in order) > all."""
    data = dict(inventory.get_data())
    data.update(inventory.get_groups_data(host.groups))
    data.update(inventory.get_host_data(host.name))
    data.update(inventory.get_override_data())
    return data


def site_from_inventory(inventory) -> Site:
    return build_site({host.name: (tuple(host.groups), merged_data(inventory, host)) for host in inventory})


def build_site(hosts: Hosts) -> Site:
    """Validate every host and the rules across them; raise one InventoryError listing every problem."""
    problems: list[Problem] = []
    hosts = text_keyed(hosts, problems)
    specs: list[HostSpec] = []
    settings: dict[str, HostSettings] = {}
    for name, (groups, data) in hosts.items():
        spec, parsed = parse_host(name, groups, data, problems)
        if spec is not None:
            specs.append(spec)
        if parsed is not None:
            settings[name] = parsed

    problems += data_problems(hosts, specs)
    if not problems:
        problems += settings_problems(hosts, specs, settings)
    if problems:
        raise InventoryError(problems)
    site = Site.of(tuple(specs), settings)
    problems += control_problems(site)
    if problems:
        raise InventoryError(problems)
    return site


def load_inventory(inventory_file: str, cwd: str | None = None):
    """An Inventory built from ``inventory_file`` and its group_data exactly as the pyinfra CLI builds it."""
    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory_from_files

    cwd = cwd or os.getcwd()
    if ctx_state.isset():
        return make_inventory_from_files(inventory_file, cwd=cwd)
    with ctx_state.use(State()):
        return make_inventory_from_files(inventory_file, cwd=cwd)


def check_before_connecting(state) -> None:
    """Have pyinfra validate the inventory it loaded (with --data overrides) before it connects to any host.

    For the repository's config.py, which the pyinfra CLI runs before it loads the inventory: an inventory file
    that forgets its ``check_inventory(__file__)`` is checked all the same. pyinfra's ``State.init`` runs once the
    inventory is loaded, before "Connecting to hosts", and starts a fresh list of callback handlers (so a
    ``host_before_connect`` callback added from config.py would be dropped, and one raised from would fail inside
    each host's connection greenlet): the check runs right after ``init``, and its InventoryError is the error
    pyinfra prints, exiting non-zero.
    """
    init = state.init

    def init_then_check(inventory, *args, **kwargs):
        init(inventory, *args, **kwargs)
        site_from_inventory(inventory)

    state.init = init_then_check


_loading = False


def check_inventory(inventory_file: str) -> None:
    """Load ``inventory_file`` the way the pyinfra CLI does and validate the whole site.

    Called at the bottom of an inventory file: pyinfra loads the inventory (and its group_data)
    before it connects anywhere, so a problem raised here never reaches a host.
    """
    global _loading
    if _loading:  # we are the nested load below
        return
    _loading = True
    try:
        inventory = load_inventory(inventory_file)
    finally:
        _loading = False
    site_from_inventory(inventory)
