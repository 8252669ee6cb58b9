"""The lab: the hosts of a lab inventory (inventory/lab.py unless told) as podman containers with systemd as PID 1.

The containers share this machine's kernel, so every kernel-global value the deploy may change
(vm.*, transparent huge pages, swap) is recorded before the lab first comes up and put back by
`down` and by `reboot`, which also stands in for a power cycle of the hosts.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.image import ADMIN, ensure_image
from lab.paths import (
    CACHE_DIR,
    LLAMA_TOY_MODEL,
    LLAMA_TOY_MODEL_SHA256,
    MACHINE_DIR,
    QWEN_MODEL,
    QWEN_MODEL_SHA256,
    REPO,
    STATE_DIR,
)
from roles.common.network import port_open
from roles.model_server.deploy import SHADER_CACHE as MODEL_SERVER_CACHE
from roles.model_server.operations import CCACHE_DIR

INVENTORY = REPO / "inventory" / "lab.py"
NETWORK = "clawlan-lab"
LABEL = "clawlan.lab"
SWAP_VOLUME_MOUNT = "/var/lib/swap"
LOCAL_CAS = Path("/usr/local/share/ca-certificates")

# Values shared by the containers and this machine; `down` and `reboot` put them back.
KERNEL_GLOBALS = (
    "/proc/sys/vm/swappiness",
    "/proc/sys/vm/nr_hugepages",
    "/sys/kernel/mm/transparent_hugepage/enabled",
    "/sys/kernel/mm/transparent_hugepage/defrag",
)
# What a blank lab host would download again, kept on this machine per host name (a recreated box gets its
# predecessor's): apt's archives, pip's cache (root's, through sudo -H) and npm's (roles/gateway). Each is checked as
# it would be from the network: apt against the signed indexes, pip and npm against the locks' hashes, so a tampered
# lock misses the cache and fails as it would without it. A site's mirror or proxy does the same for a real box.
DOWNLOAD_CACHES = {
    "apt": "/var/cache/apt/archives",
    "pip": "/root/.cache/pip",
    "npm": "/var/cache/clawlan/npm",
}
# llama.cpp's compiled objects (ccache), shared by the hosts of one Debian release, whose compiler made them: the
# engine switch's CPU build and the second backend's take the first Vulkan build's objects. A real box keeps its own.
COMPILER_CACHE = "ccache"
# Mesa's compiled shaders, shared by the backends of one Debian release (whose Mesa made them) like the objects above.
# lavapipe compiles each of llama.cpp's kernels with LLVM: on one thread a blank backend spent ~40 s in the server's
# empty warm-up run and ~30 s more in its first long prompt, holding every other chat meanwhile. A real box compiles
# its own once (RADV, in seconds) and keeps them in the same directory.
SHADER_CACHE = "shaders"
# podman's default rlimits cannot be set in this sandbox; these fit under the hard limits.
RLIMITS = ("--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096")
# crun refuses a cgroup v1/v2 hybrid host ("cgroups in hybrid mode not supported"); runc runs there.
RUNTIME = ("--runtime", "runc")


class LabError(RuntimeError):
    pass


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    groups: tuple[str, ...]
    # The hardware the inventory declares, made true for the container: a memory limit and a set of this machine's
    # cores, which the deploy's hardware check (roles/base/hardware.py) reads as a real box's RAM and cores.
    memory_gib: float = 0
    cpuset: str = ""
    debian: int = 13  # the release of its image (hw_debian)

    @property
    def container(self) -> str:
        return f"clawlan-{self.name}"

    @property
    def swap_volume(self) -> str | None:
        # The backend keeps its swapfile on an ext4-backed volume: swapon refuses overlayfs.
        return f"clawlan-{self.name}-swap" if "backend" in self.groups else None


def lab_hosts(inventory_file: Path = INVENTORY) -> list[LabHost]:
    """The hosts, addresses and groups written in the lab inventory (validated on load)."""
    from roles.inventory.load import load_inventory

    inventory = load_inventory(str(inventory_file), cwd=str(REPO))
    cores = machine_cores()
    hosts, next_core = [], 0
    for host in inventory:
        wanted = host.data.hw_cpu_cores
        if wanted > len(cores):
            raise LabError(f"{host.name} declares {wanted} cores; this machine has {len(cores)}")
        # Round robin: the hosts share this machine's cores as evenly as their declared counts allow.
        taken = [cores[(next_core + i) % len(cores)] for i in range(wanted)]
        next_core = (next_core + wanted) % len(cores)
        cpuset = ",".join(str(cpu) for core in taken for cpu in core)
        hosts.append(
            LabHost(host.name, host.data.ssh_hostname, tuple(host.groups), host.data.hw_memory_gib, cpuset,
                    host.data.hw_debian)
        )  # fmt: skip
    return hosts


def machine_cores() -> list[tuple[int, ...]]:
    """This machine's physical cores this process may use, each as its CPUs (SMT siblings share a core)."""
    from roles.base.hardware import physical_cores

    return physical_cores(_run("lscpu", "--parse=CPU,CORE,SOCKET").stdout.splitlines(), os.sched_getaffinity(0))


def _run(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, check=False, text=True, capture_output=capture)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run("podman", *args, check=check)


class Lab:
    def __init__(
        self, state_dir: Path = STATE_DIR, cache_dir: Path = CACHE_DIR, log=print, inventory: Path = INVENTORY
    ):
        self.state_dir = state_dir
        self.cache_dir = cache_dir
        self.log = log
        self.hosts = lab_hosts(inventory)

    # Paths the lab inventory points at.
    @property
    def key(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.state_dir / "ssh_config"

    @property
    def _kernel_originals(self) -> Path:
        return MACHINE_DIR / "kernel-originals.json"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One process drives the lab at a time: a test session holds this for its whole run."""
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        MACHINE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(MACHINE_DIR / "lock", "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                raise LabError(f"the lab is in use by another process ({lock.read().strip()})") from None
            lock.truncate(0)
            lock.write(f"pid {os.getpid()}")
            lock.flush()
            try:
                yield
            finally:
                lock.truncate(0)

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        networks = {ipaddress.ip_network(f"{h.address}/24", strict=False) for h in self.hosts}
        if len(networks) != 1:
            raise LabError(f"lab hosts must share one /24, got {sorted(map(str, networks))}")
        return networks.pop()

    # -- up ------------------------------------------------------------------------------------

    def up(self) -> None:
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._ensure_keypair()
        images = {debian: ensure_image(self.cache_dir, debian, log=self.log) for debian in self._releases}
        ensure_lab_models(self.log)
        self._record_kernel_originals()
        self._clear_stale_containers()
        self._ensure_network()
        started = []
        for host in self.hosts:
            if self._container_state(host) == "running":
                continue
            self.log(f"lab: starting {host.name} at {host.address}")
            self._create_container(host, images[host.debian])
            started.append(host)
        for host in self.hosts:
            self._wait_ready(host)
        self._write_ssh_files()
        if started:
            self.log(f"lab: up ({', '.join(h.name for h in self.hosts)}); ssh config: {self.ssh_config}")

    @property
    def _releases(self) -> list[int]:
        return sorted({host.debian for host in self.hosts})

    def _ensure_keypair(self) -> None:
        if not self.key.exists():
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "clawlan-lab", "-f", str(self.key))

    def _record_kernel_originals(self) -> None:
        # A leftover file from a killed run holds the true originals: keep it.
        if self._kernel_originals.exists():
            return
        MACHINE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        originals = {path: _read_kernel_value(path) for path in KERNEL_GLOBALS if Path(path).exists()}
        self._kernel_originals.write_text(json.dumps(originals, indent=1))

    def _container_state(self, host: LabHost) -> str | None:
        result = _podman("container", "inspect", "--format", "{{.State.Status}}", host.container, check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def _clear_stale_containers(self) -> None:
        for host in self.hosts:
            state = self._container_state(host)
            if state not in (None, "running"):
                self.log(f"lab: removing stale container {host.container} ({state})")
                self._remove_container(host)

    def _ensure_network(self) -> None:
        wanted = str(self.subnet)
        result = _podman("network", "inspect", NETWORK, check=False)
        if result.returncode == 0:
            subnets = [s["subnet"] for s in json.loads(result.stdout)[0].get("subnets", [])]
            if subnets == [wanted]:
                return
            self.log(f"lab: replacing network {NETWORK} ({subnets} != {wanted})")
            _podman("network", "rm", "--force", NETWORK)
        gateway = str(next(self.subnet.hosts()))
        _podman("network", "create", "--label", LABEL, "--subnet", wanted, "--gateway", gateway, NETWORK)

    def _create_container(self, host: LabHost, image: str) -> None:
        args = [
            "create",
            "--name", host.container,
            "--label", LABEL,
            "--hostname", host.name,
            "--network", NETWORK,
            "--ip", host.address,
            "--systemd=always",
            # Both hosts apply sysctls and THP like real boxes; unprivileged, /proc/sys is read-only.
            "--privileged",
            # /etc/hosts belongs to the deploy, as on a real box, not to podman.
            "--no-hosts",
            *RLIMITS,
            *RUNTIME,
            "--memory", f"{int(host.memory_gib * 1024)}m",
            "--cpuset-cpus", host.cpuset,
        ]  # fmt: skip
        if host.swap_volume:
            if _podman("volume", "exists", host.swap_volume, check=False).returncode != 0:
                _podman("volume", "create", "--label", LABEL, host.swap_volume)
            args += ["--volume", f"{host.swap_volume}:{SWAP_VOLUME_MOUNT}"]
        for name, mount in DOWNLOAD_CACHES.items():
            kept = self.cache_dir / "downloads" / host.name / name
            kept.mkdir(mode=0o755, parents=True, exist_ok=True)  # apt's _apt user reaches partial/ through it
            args += ["--volume", f"{kept}:{mount}"]
        objects = self.cache_dir / COMPILER_CACHE / f"debian{host.debian}"
        objects.mkdir(mode=0o700, parents=True, exist_ok=True)
        args += ["--volume", f"{objects}:{CCACHE_DIR}"]
        if "backend" in host.groups:
            shaders = self.cache_dir / SHADER_CACHE / f"debian{host.debian}"
            shaders.mkdir(mode=0o700, parents=True, exist_ok=True)  # systemd gives it to the unit's user at start
            args += ["--volume", f"{shaders}:/var/cache/{MODEL_SERVER_CACHE}"]
        _podman(*args, image, "/lib/systemd/systemd")
        # The hosts trust the CAs this machine added locally (a proxy's, say), so they reach the package
        # registries the way this machine does; ca-certificates picks them up when the deploy installs it.
        if any(LOCAL_CAS.glob("*.crt")):
            _podman("cp", str(LOCAL_CAS), f"{host.container}:{LOCAL_CAS.parent}/")
        authorized = self.state_dir / "authorized_keys"
        shutil.copyfile(self.key.with_suffix(".pub"), authorized)
        _podman("cp", str(authorized), f"{host.container}:/root/.ssh/authorized_keys")
        _podman("cp", str(authorized), f"{host.container}:/home/{ADMIN}/.ssh/authorized_keys")
        _podman("start", host.container)

    def _wait_ready(self, host: LabHost, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = _podman("exec", host.container, "systemctl", "is-system-running", check=False)
            if state.stdout.strip() in ("running", "degraded") and port_open(host.address, 22):
                return
            time.sleep(0.5)
        raise LabError(f"{host.name} did not boot within {timeout:.0f}s (systemd: {state.stdout.strip()})")

    def _write_ssh_files(self) -> None:
        known, config = [], []
        for host in self.hosts:
            # Read through podman, not over the network: the key is trusted because of where it came from.
            pubkey = _podman("exec", host.container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout
            key_type, key_body = pubkey.split()[:2]
            known.append(f"{host.address},{host.name} {key_type} {key_body}")
            config.append(
                f"Host {host.name}\n"
                f"    HostName {host.address}\n"
                "    User root\n"
                f"    IdentityFile {self.key}\n"
                "    IdentitiesOnly yes\n"
                f"    UserKnownHostsFile {self.known_hosts}\n"
                "    StrictHostKeyChecking yes\n"
            )
        self.known_hosts.write_text("\n".join(known) + "\n")
        self.ssh_config.write_text("\n".join(config))

    # -- down ----------------------------------------------------------------------------------

    def down(self) -> None:
        containers = self._labelled("container")
        for container in containers:
            self.log(f"lab: removing {container}")
            _podman("exec", container, "swapoff", "--all", check=False)
        if containers:  # one command: podman stops them side by side
            _podman("rm", "--force", "--time", "5", *containers, check=False)
        self._swapoff_lab_volumes()
        for volume in self._labelled("volume"):
            _podman("volume", "rm", "--force", volume, check=False)
        if _podman("network", "exists", NETWORK, check=False).returncode == 0:
            _podman("network", "rm", "--force", NETWORK, check=False)
        self._restore_kernel_originals(forget=True)
        for name in ("known_hosts", "ssh_config", "authorized_keys", "id_ed25519", "id_ed25519.pub"):
            (self.state_dir / name).unlink(missing_ok=True)
        # The lab site's CA and secrets belong to the hosts just removed.
        shutil.rmtree(self.state_dir / "site", ignore_errors=True)
        self.log("lab: down")

    def _labelled(self, kind: str) -> list[str]:
        fmt = "{{.Names}}" if kind == "container" else "{{.Name}}"
        listing = ["ps", "--all"] if kind == "container" else [kind, "ls"]
        result = _podman(*listing, "--filter", f"label={LABEL}", "--format", fmt, check=False)
        return result.stdout.split()

    def _swapoff_lab_volumes(self) -> None:
        """A swapfile stays active in the shared kernel after its container is gone (a killed run).

        /proc/swaps names it by its path inside the container, which means nothing here, so every
        file of the volume is offered to swapoff by this machine's path (the same inode); files that
        are not active swap are refused harmlessly.
        """
        for volume in self._labelled("volume"):
            mountpoint = Path(_podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip())
            for candidate in mountpoint.glob("*"):
                if candidate.is_file():
                    _run("swapoff", str(candidate), check=False)

    def _restore_kernel_originals(self, forget: bool) -> None:
        if not self._kernel_originals.exists():
            return
        for path, value in json.loads(self._kernel_originals.read_text()).items():
            if _read_kernel_value(path) != value:
                Path(path).write_text(value)
        if forget:
            self._kernel_originals.unlink()

    # -- reboot, status, ssh -------------------------------------------------------------------

    def reboot(self) -> None:
        """A power cycle: nothing survives but the disks, so the kernel starts from its defaults."""
        containers = [host.container for host in self.hosts]
        for container in containers:
            _podman("exec", container, "swapoff", "--all", check=False)
        _podman("stop", "--time", "20", *containers)  # side by side, as a power cut takes them
        self._swapoff_lab_volumes()
        self._restore_kernel_originals(forget=False)
        _podman("start", *containers)
        for host in self.hosts:
            self._wait_ready(host)
        self.log("lab: rebooted")

    def stop(self, host_name: str) -> None:
        """One host powered off (its disk kept), as a box that dies or is unplugged."""
        _podman("stop", "--time", "5", self._host(host_name).container)

    def start(self, host_name: str) -> None:
        """A host stopped by ``stop`` powered on again; returns once its systemd runs and this machine reaches its
        sshd (a restarted container answers at a new MAC address: until then this machine's ARP entry is stale)."""
        host = self._host(host_name)
        _podman("start", host.container)
        self._wait_ready(host)

    def pause(self, host_name: str) -> None:
        """A host frozen: no process runs, its kernel still answers on the network, as a box hung mid-answer."""
        _podman("pause", self._host(host_name).container)

    def unpause(self, host_name: str) -> None:
        _podman("unpause", self._host(host_name).container)

    def _host(self, host_name: str) -> LabHost:
        host = next((h for h in self.hosts if h.name == host_name), None)
        if host is None:
            raise LabError(f"no lab host {host_name!r}; hosts: {', '.join(h.name for h in self.hosts)}")
        return host

    def device(self, address: str, program: str, stdin: str = "", timeout_s: float = 120) -> str:
        """Run ``program`` (Python source) on another device of the lab's LAN: a throwaway container at ``address`` on
        the lab network, from the lab's image, with no key, no deploy and no privileges. Returns its stdout."""
        image = ensure_image(self.cache_dir, self.hosts[0].debian, log=self.log)
        result = subprocess.run(
            ["podman", "run", "--rm", "-i", "--label", LABEL, "--network", NETWORK, "--ip", address, *RLIMITS, *RUNTIME,
             image, "python3", "-c", program],
            input=stdin, capture_output=True, text=True, timeout=timeout_s, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise LabError(f"the lab device at {address} failed: {result.stderr.strip()}")
        return result.stdout

    def recreate(self, host_name: str, trust: bool = True) -> None:
        """A hardware swap: the host comes back blank (new disk, new host key) at the address and with the hardware
        this lab's inventory gives it (inventory/lab_swapped.py moves lab-back). ``trust=False``
        leaves the lab's known_hosts as it was: the new key must then be enrolled (tools/enrol.py)."""
        host = self._host(host_name)
        _podman("exec", host.container, "swapoff", "--all", check=False)
        self._remove_container(host)
        if host.swap_volume:
            _podman("volume", "rm", "--force", host.swap_volume, check=False)
        self._create_container(host, ensure_image(self.cache_dir, host.debian, log=self.log))
        self._wait_ready(host)
        if trust:
            self._write_ssh_files()
        self.log(f"lab: {host_name} recreated blank")

    def console_fingerprint(self, host_name: str) -> str:
        """The host key's fingerprint as the box's console shows it (`ssh-keygen -lf`), read through podman."""
        output = _podman(
            "exec", self._host(host_name).container, "ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub"
        ).stdout
        return output.split()[1]

    def status(self) -> list[dict]:
        rows = []
        for host in self.hosts:
            state = self._container_state(host) or "absent"
            rows.append(
                {
                    "host": host.name,
                    "address": host.address,
                    "groups": ",".join(host.groups),
                    "container": state,
                    "ssh": "open" if state == "running" and port_open(host.address, 22) else "-",
                }
            )
        return rows

    def ssh_command(self, host_name: str, *command: str) -> list[str]:
        self._host(host_name)  # an unknown name is refused, naming the lab's hosts
        return ["ssh", "-F", str(self.ssh_config), host_name, *command]

    def _remove_container(self, host: LabHost) -> None:
        _podman("rm", "--force", host.container, check=False)


def ensure_lab_models(log=print) -> None:
    """The lab inventory's model and the small second model the download tests fetch: generated here (never
    downloaded), each checked against its pinned hash."""
    from lab import qwen_model, tiny_model
    from roles.common.files import sha256_file

    for path, pinned, generate in (
        (QWEN_MODEL, QWEN_MODEL_SHA256, qwen_model.generate),
        (LLAMA_TOY_MODEL, LLAMA_TOY_MODEL_SHA256, tiny_model.generate),
    ):
        if path.exists() and sha256_file(path) == pinned:
            continue
        log(f"lab: generating the test model {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        made = generate(path)
        if made != pinned:
            raise LabError(f"generated {path.name} has sha256 {made}, expected {pinned} (gguf/numpy changed?)")


def _read_kernel_value(path: str) -> str:
    text = Path(path).read_text().strip()
    # THP files list every mode with the active one in brackets: "always [madvise] never".
    if "[" in text:
        return text.split("[", 1)[1].split("]", 1)[0]
    return text
