"""Facts the firewall role reads: whether the live table is the one deployed, and where the deploy connects from."""

from __future__ import annotations

from pyinfra.api import FactBase

from roles.firewall.config import LOADED, RULES, TABLE


class FirewallState(FactBase):
    """``{"rules": <sha256 of the ruleset in service, or "">, "live": <whether the live table is what was loaded
    and confirmed>}``. The live table is compared without its counters: traffic is not drift."""

    def command(self) -> str:
        return (
            f"echo rules $(sha256sum {RULES} 2>/dev/null | cut -d' ' -f1); "
            f"if nft -s list table inet {TABLE} 2>/dev/null | cmp -s - {LOADED}; "
            "then echo live yes; else echo live no; fi"
        )

    def process(self, output):
        values = dict((line.split(" ", 1) + [""])[:2] for line in output)
        return {"rules": values.get("rules", "").strip(), "live": values.get("live") == "yes"}


class SshClientAddress(FactBase):
    """The address this deploy's SSH connection comes from, as the host sees it ("" when not over SSH). Read it as
    the login user (``_sudo=False``): sudo does not pass SSH_CONNECTION on."""

    def command(self) -> str:
        return 'echo "${SSH_CONNECTION%% *}"'

    def process(self, output):
        return output[0].strip() if output else ""
