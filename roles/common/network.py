"""What the control machine reaches on the network, asked of the network itself rather than of a host."""

from __future__ import annotations

import socket


def port_open(address: str, port: int) -> bool:
    """Whether a TCP connection to ``address``:``port`` is accepted within a second."""
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False
