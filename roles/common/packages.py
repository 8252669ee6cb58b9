"""Package installation that stays quiet on a converged host, and repairs a dpkg that was interrupted."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import FactBase, operation
from pyinfra.operations import apt


class DpkgInterrupted(FactBase):
    """Whether dpkg was stopped half-way (a killed deploy, a power cut): what ``dpkg --audit`` reports, plus the
    journal in /var/lib/dpkg/updates that makes apt refuse to run until ``dpkg --configure -a``."""

    def command(self) -> str:
        return "{ ls -A /var/lib/dpkg/updates; dpkg --audit; } 2>/dev/null | head -n 5"

    def process(self, output):
        return [line for line in output if line.strip()]


@operation()
def dpkg_repaired():
    """Finish what an interrupted dpkg left half-done, so the deploy's package installs can run at all."""
    left = host.get_fact(DpkgInterrupted)
    if not left:
        host.noop("dpkg is consistent")
        return
    # One command: --configure may fail on a package that was only half-unpacked, which apt then installs again;
    # the deploy stops here only if dpkg still reports something left undone.
    yield (
        "export DEBIAN_FRONTEND=noninteractive; dpkg --configure -a --force-confdef --force-confold;"
        " apt-get -y -o Dpkg::Options::=--force-confold --fix-broken install >/dev/null"
        ' && test -z "$(dpkg --audit)"'
    )


def install_packages(name: str, packages: list[str], installed: frozenset[str], no_recommends: bool = False):
    """apt.packages, only when something is missing: on a converged host the operation (and its dpkg
    query, run twice by pyinfra) is skipped, which keeps a no-op re-run fast. ``installed`` counts only packages
    dpkg has installed and configured: one a killed deploy left unpacked is installed again."""
    if set(packages) <= installed:
        return None
    return apt.packages(name=name, packages=packages, update=True, cache_time=3600, no_recommends=no_recommends)
