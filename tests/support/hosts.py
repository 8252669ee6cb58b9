"""testinfra hosts built from a pyinfra inventory: one host list for the deploy and for its checks."""

from __future__ import annotations

import functools
import os

import paramiko
import testinfra
from testinfra.backend.paramiko import ParamikoBackend

from roles.common.ssh import send_at_once


class VerifiedParamikoBackend(ParamikoBackend):
    """testinfra's paramiko backend, but refusing any host key not in the inventory's known_hosts file.

    (The stock backend accepts unknown keys with a warning.)
    """

    def __init__(self, hostspec: str, *, address: str, port: int, user: str, key_file: str | None,
                 known_hosts: str, **kwargs):  # fmt: skip
        super().__init__(hostspec, **kwargs)
        self._connect_args = {"hostname": address, "port": port, "username": user, "timeout": self.timeout}
        if key_file:
            self._connect_args["key_filename"] = key_file
        self._known_hosts = known_hosts

    @functools.cached_property
    def client(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.load_host_keys(self._known_hosts)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(**self._connect_args)
        send_at_once(client)
        return client


def remote_host(inventory_host) -> testinfra.host.Host:
    """A testinfra Host that connects the way pyinfra does for ``inventory_host`` (address, user, key)."""
    data = inventory_host.data
    backend = VerifiedParamikoBackend(
        f"paramiko://{inventory_host.name}",
        address=data.get("ssh_hostname"),
        port=int(data.get("ssh_port") or 22),
        user=data.get("ssh_user") or "root",
        key_file=data.get("ssh_key"),
        known_hosts=data.get("ssh_known_hosts_file") or os.path.expanduser("~/.ssh/known_hosts"),
        # Like pyinfra with _sudo, run checks as root on sites that log in as an admin user.
        sudo=bool(data.get("_sudo")),
    )
    return testinfra.host.Host(backend)
