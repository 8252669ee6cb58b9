"""The one place deploys turn the inventory into role configs."""

from __future__ import annotations

import fcntl
import os
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import IO

from pyinfra import host, inventory, state
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import FileContents

from roles.base.facts import HostHardware
from roles.base.hardware import HardwareMismatch, mismatches
from roles.common.ca import held_serials, issued_serials, load_ca, revocation_list, trusted_ca_directories
from roles.common.settings import InventoryError
from roles.common.ssh import send_at_once
from roles.firewall.config import control_path_problem
from roles.firewall.facts import SshClientAddress
from roles.inventory.load import site_from_inventory
from roles.site.site import Site

# The site lock, held by this pyinfra process from its first host's deploy file to its exit (the kernel lets it go
# then, however the process ends: killed, crashed or done).
_held: dict[str, IO] = {}


def this_site() -> Site:
    _send_at_once()
    # Validated again here: pyinfra --data overrides are applied after the inventory file's own check.
    site = site_from_inventory(inventory)
    _hold_the_site_lock(site)
    _refuse_a_partial_site()
    _check_hardware(site)
    _check_control_path(site)
    return replace(site, revocations=_revocations(site))


def _send_at_once() -> None:
    """Every connection pyinfra opened, before its first fact: see roles.common.ssh.send_at_once."""
    for connected in inventory:
        client = getattr(connected.connector, "client", None)  # SSH connections only (not @local, @docker)
        if client is not None:
            send_at_once(client)


def _hold_the_site_lock(site: Site) -> None:
    """One deploy of a site at a time: a second, started while one runs (two admins, a timer and a person), would
    write the same files and restart the same units under it. It is refused at once, before any host is touched;
    the first goes on."""
    path = site.control.state_dir / "deploy.lock"
    if str(path) in _held:
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = open(path, "a+")  # noqa: SIM115 (held open for the process' lifetime, on purpose)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise PyinfraError(
            f"another deploy of this site is running ({holder}; lock {path}): nothing was changed. Wait for it to"
            " end, then deploy again."
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
    lock.flush()
    _held[str(path)] = lock


def _refuse_a_partial_site() -> None:
    """A host pyinfra could not reach (a replaced box's unknown host key, a box down) stops the whole deploy: the
    others would be configured for a site that is not there (a frontend balancing to a backend never set up).
    --limit leaves hosts out deliberately; those are not failed."""
    unreachable = sorted(failed.name for failed in state.failed_hosts)
    if unreachable:
        raise PyinfraError(
            f"could not reach {', '.join(unreachable)} (see above), so nothing was changed on any host. A replaced box"
            " is enrolled first (make enrol HOST=<name>); to deploy the other hosts alone, name them with --limit."
        )


def _check_hardware(site: Site) -> None:
    """The declared RAM and cores size every host: read what each has before any operation is even prepared, and
    name every host that disagrees at once. pyinfra keeps facts per host, so each host's are read once a run."""
    problems = []
    for each in sorted(inventory.get_active_hosts(), key=lambda h: h.name):
        tolerance = site.settings[each.name].base.hw_memory_tolerance_percent
        problems += [
            (each.name, p) for p in mismatches(site.topology.host(each.name), each.get_fact(HostHardware), tolerance)
        ]
    if problems:
        raise HardwareMismatch(problems)


def _check_control_path(site: Site) -> None:
    """The firewall admits SSH from the admin networks only: a deploy from a machine outside them would lock that
    machine out on its next connection. Refused here, before any host is touched."""
    problems = []
    for each in sorted(inventory.get_active_hosts(), key=lambda h: h.name):
        # As the login user: sudo clears SSH_CONNECTION, and an empty answer would skip the check unseen.
        control = each.get_fact(SshClientAddress, _sudo=False)
        if control and (problem := control_path_problem(site.settings[each.name].firewall, each.name, control)):
            problems.append(problem)
    if problems:
        raise InventoryError(problems)


def _revocations(site: Site) -> str:
    """The revocation lists for this run, one per CA the hosts trust (two during a CA rotation): every certificate
    the CA issued that no inventory host holds now (a retired or swapped box's, a host's removed from the inventory).
    A certificate being replaced in this run is still held, so it works until the next run: a deploy killed halfway
    never locks a host out. Unless every inventory host is in the run (--limit, a host down), who holds what is not
    known, and each list stays as it was."""
    issuance = site.pki_config(site.topology.hosts[0].name).issuance
    issuance.site_ca()  # a new site's CA is made before anything reads the directory
    active = {each.name: each for each in inventory.get_active_hosts()}
    everyone = set(active) == {spec.name for spec in site.topology.hosts}
    held = [
        "\n".join(lines) + "\n"
        for name, each in active.items()
        for path in site.identities.certificate_paths(name)
        if everyone and (lines := each.get_fact(FileContents, path=path))
    ]
    lists = []
    for directory in trusted_ca_directories(Path(issuance.ca_dir)):
        ca = load_ca(directory)
        revoked = issued_serials(directory) - held_serials(ca, directory, held) if everyone else None
        lists.append(
            revocation_list(
                ca, directory, revoked=revoked, valid_days=site.settings[site.topology.hosts[0].name].pki.crl_days
            )
        )
    return "".join(lists)


def installed_packages() -> frozenset[str]:
    return frozenset(host.get_fact(DebPackages) or {})
