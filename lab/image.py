"""The lab hosts' root filesystems: a bare Debian 12 or 13 box (a host's ``hw_debian``), each built once and cached.

An image holds only what a freshly installed server has (systemd, sshd, python3, iproute2, procps, sudo and an
admin login, and apt sources as that release's installer writes them): every package the appliance needs is
installed by the deploy, as on a real site.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SUITES = {12: "bookworm", 13: "trixie"}
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "iproute2",
    "procps",
    "sudo",
)
# Debian 13's systemd loads kernel modules through libkmod, which minbase lacks: without it systemd-modules-load
# fails and the box boots "degraded".
EXTRA_PACKAGES = {13: ("kmod",)}
# The installer's apt sources: one-line sources.list on Debian 12, deb822 debian.sources on Debian 13.
SOURCES_STEP = {
    12: """printf 'deb %s %s main\\ndeb http://deb.debian.org/debian-security %s-security main\\n' \\
    "MIRROR" "SUITE" "SUITE" > "$root"/etc/apt/sources.list""",
    13: """rm -f "$root"/etc/apt/sources.list
sources="$root"/etc/apt/sources.list.d/debian.sources
key=/usr/share/keyrings/debian-archive-keyring.gpg
printf 'Types: deb\\nURIs: %s\\nSuites: %s %s-updates\\nComponents: main\\nSigned-By: %s\\n\\n' \\
    "MIRROR" "SUITE" "SUITE" "$key" > "$sources"
printf 'Types: deb\\nURIs: %s\\nSuites: %s-security\\nComponents: main\\nSigned-By: %s\\n' \\
    http://deb.debian.org/debian-security "SUITE" "$key" >> "$sources\"""",
}

# The deploys log in as this user and work as root through sudo, as inventory/site.py does on a real site: every test
# runs the path a real site runs (pyinfra's sudo transfers included). Root's own login is the lab's console only.
ADMIN = "admin"

# Run inside the new root by mmdebstrap. Host keys are removed so each container makes its own on
# first boot (as cloud images do); /etc/hosts is the installer's, since podman's is disabled.
CUSTOMIZE = (
    r"""
set -e
root="$1"
rm -f "$root"/etc/ssh/ssh_host_*
cat > "$root"/etc/systemd/system/ssh-host-keys.service <<'EOF'
[Unit]
Description=Generate this host's SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
EOF
cat > "$root"/etc/ssh/sshd_config.d/10-lab.conf <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$root"/etc/hosts
SOURCES_STEP
chroot "$root" useradd --create-home --shell /bin/bash ADMIN
chroot "$root" install -d -m 700 -o ADMIN -g ADMIN /home/ADMIN/.ssh
printf 'ADMIN ALL=(ALL:ALL) NOPASSWD: ALL\n' > "$root"/etc/sudoers.d/ADMIN
chmod 440 "$root"/etc/sudoers.d/ADMIN
chroot "$root" systemctl enable ssh.service ssh-host-keys.service
chroot "$root" systemctl mask getty@tty1.service console-getty.service systemd-udevd.service \
    2>/dev/null || true
rm -f "$root"/etc/machine-id && touch "$root"/etc/machine-id
"""
).replace("ADMIN", ADMIN)


def customize(debian: int) -> str:
    """The customize hook of one release's image."""
    step = SOURCES_STEP[debian].replace("MIRROR", MIRROR).replace("SUITE", SUITES[debian])
    return CUSTOMIZE.replace("SOURCES_STEP", step)


def packages(debian: int) -> tuple[str, ...]:
    return (*PACKAGES, *EXTRA_PACKAGES.get(debian, ()))


def image_tag(debian: int) -> str:
    """A tag that changes whenever anything that goes into the image changes."""
    # Debian 12's tag is the one it had before there were two releases: its cached image stays valid.
    parts = (SUITES[debian], MIRROR, *packages(debian), customize(debian))
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return f"localhost/clawlan-lab:{digest[:12]}"


def _podman_has_image(tag: str) -> bool:
    return subprocess.run(["podman", "image", "exists", tag], check=False).returncode == 0


def ensure_image(cache_dir: Path, debian: int, log=print) -> str:
    """Return the tag of release ``debian``'s image, importing the cached tarball or building it first when needed."""
    tag = image_tag(debian)
    if _podman_has_image(tag):
        return tag
    tarball = cache_dir / f"{tag.rsplit(':', 1)[1]}.tar"
    if not tarball.exists():
        log(f"lab: building the Debian {debian} ({SUITES[debian]}) image with mmdebstrap (about 4 min, cached after)")
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            hook = Path(tmp) / "customize.sh"
            hook.write_text(customize(debian))
            partial = Path(tmp) / "rootfs.tar"
            subprocess.run(
                [
                    "mmdebstrap",
                    "--quiet",
                    "--variant=minbase",
                    f"--include={','.join(packages(debian))}",
                    f'--customize-hook=sh {hook} "$1"',
                    SUITES[debian],
                    str(partial),
                    MIRROR,
                ],
                check=True,
                stdout=sys.stderr,
            )
            # Moved into place only when complete, so a killed build never leaves a bad cache entry.
            shutil.move(partial, tarball)
    log(f"lab: importing {tarball.name} into podman")
    subprocess.run(
        [
            "podman",
            "import",
            "--change",
            "CMD=/lib/systemd/systemd",
            "--change",
            "STOPSIGNAL=SIGRTMIN+3",
            str(tarball),
            tag,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return tag
