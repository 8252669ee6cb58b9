"""Role model_server: llama.cpp's server (llama-server, or llama-cpp-python's) on loopback, with the pinned model,
as a hardened unit. Both engines come from one build of the pinned llama-cpp-python source."""

from __future__ import annotations

import posixpath
from io import StringIO
from pathlib import Path

from pyinfra.api import deploy

from roles.common.accounts import system_group, system_user
from roles.common.files import host_files, writing
from roles.common.packages import install_packages
from roles.common.python import virtualenv
from roles.common.secrets import site_secret
from roles.common.templates import render, rendered
from roles.common.units import service
from roles.model_server.config import (
    ALL_SLOTS_MARKER,
    CAPTURE_SOCKET,
    CAPTURE_STATE_DIR,
    CAPTURE_UNIT,
    CONFIG_FILE,
    GTT_CONF,
    KEY_FILE,
    PREFIX_FILE,
    RENDER_GROUP,
    RUNTIME_DIR,
    SECRETS_FILE,
    SERVER_DIR,
    UNIT,
    USER,
    VENV,
    WARM_MARKER,
    ModelServerConfig,
)
from roles.model_server.facts import STARTUP_RECORD
from roles.model_server.offload import MARKERS
from roles.model_server.operations import (
    gpu_kernel_ready,
    gtt_in_effect,
    gtt_limit,
    llama_cpp_build,
    model_file,
    serving_on_gpu,
)
from roles.model_server.settings import CPU, LAVAPIPE, RADV, VULKAN

AWAIT_READY = f"{VENV}/clawlan-await-ready.py"
RECORD_STARTUP = f"{VENV}/clawlan-record-startup.py"
WARM_UP = f"{VENV}/clawlan-warm-up.py"
CAPTURE = f"{VENV}/clawlan-prefix-capture.py"
CAPTURE_SOCKET_FILE = f"/etc/systemd/system/{CAPTURE_UNIT}.socket"
CAPTURE_SERVICE_FILE = f"/etc/systemd/system/{CAPTURE_UNIT}.service"
PROGRAMS = Path(__file__).resolve().parent / "programs"  # run on the backend
# What the server needs at run time beyond its build: the Vulkan loader, and Mesa's drivers (RADV and lavapipe).
COMPUTE_RUNTIME_PACKAGES = {CPU: (), VULKAN: ("libvulkan1", "mesa-vulkan-drivers")}
# And what the Vulkan driver adds: the GPU's firmware (gc_11_5_1_* for gfx1151), from Debian's non-free-firmware
# component, which the base role enables for such a host.
DRIVER_RUNTIME_PACKAGES = {RADV: ("firmware-amd-graphics",), LAVAPIPE: ()}
# The unit's cache directory under /var/cache, for Mesa's compiled shaders: without it every start compiles them all
# again (the first chat after a start took 3.2 s instead of 76 ms on lavapipe).
SHADER_CACHE = "clawlan-model-server"


@deploy("Model server")
def model_server(config: ModelServerConfig, installed_packages: frozenset[str] = frozenset()):
    install_packages("Install Python venv support", ["python3-venv"], installed_packages)
    runtime = runtime_packages(config)
    install_packages(f"Install the {config.compute} runtime ({', '.join(runtime)})", runtime, installed_packages)
    if config.compute == VULKAN and config.vulkan_driver == RADV:
        gpu_kernel_ready(name="Check that the kernel (6.12 or later) and firmware (gc_11_5_1) can drive the GPU")
    _gtt(config)
    system_user(name=f"Create the {USER} system user", user=USER, home="/nonexistent")
    if config.compute == VULKAN:
        # udev's rules give the GPU's render nodes to this group, and Debian's udev package makes it; a box without
        # udev (a container, the lab) has none, and systemd refuses to start a unit whose SupplementaryGroups= names
        # a group that does not exist.
        system_group(name=f"Make sure the {RENDER_GROUP} group exists (the GPU's render nodes are its)",
                     group=RENDER_GROUP)  # fmt: skip

    unit_path = f"/etc/systemd/system/{UNIT}"
    known = host_files(
        AWAIT_READY, RECORD_STARTUP, WARM_UP, CAPTURE, CAPTURE_SOCKET_FILE, CAPTURE_SERVICE_FILE, "/etc/clawlan",
        CONFIG_FILE, SECRETS_FILE, KEY_FILE, unit_path,
    )  # fmt: skip
    venv = virtualenv(name=f"Create the virtualenv {VENV}", path=VENV)
    build = llama_cpp_build(
        name=f"Install llama-cpp-python {config.version} and its llama-server from its lock (built once per lock, "
        "flags and machine)",
        venv=VENV,
        server_dir=SERVER_DIR,
        lock=config.lock,
        cmake_args=config.cmake_args,
        build_packages=config.build_packages,
        wheelhouse_dir=config.wheelhouse_dir,
        compute=config.compute,
    )
    ready_check = known.put(
        name="Install the readiness check",
        src=str(PROGRAMS / "await-ready.py"),
        dest=AWAIT_READY,
        mode="644",
        create_remote_dir=False,
    )
    startup_record = known.put(
        name="Install the start-up recorder (a GPU build's device lines, kept past the journal's rotation)",
        src=str(PROGRAMS / "record-startup.py"),
        dest=RECORD_STARTUP,
        mode="644",
        create_remote_dir=False,
    )
    warm_up = known.put(
        name="Install the warm-up (the gateway's prompt prefix evaluated after a start, before the balancers admit it)",
        src=str(PROGRAMS / "warm-up.py"),
        dest=WARM_UP,
        mode="644",
        create_remote_dir=False,
    )

    model = writing(
        model_file(
            name="Provision the pinned model file",
            path=config.model_path,
            source=config.model_source,
            sha256=config.model_sha256,
            size_gib=config.model_size_gib,
        ),
        config.model_path + ".sha256",  # what the model server runs is watched by its recorded hash, not 45 GB read
    )

    known.directory(name="Create /etc/clawlan", path="/etc/clawlan", mode="755")
    settings = known.put(
        name=f"Write the model server's settings to {CONFIG_FILE}",
        src=rendered("model_server/model-server.conf.j2", environment=config.environment()),
        dest=CONFIG_FILE,
        mode="644",
        create_remote_dir=False,
    )
    # The key is made on the control machine and lives on the host in a file only root (and, for llama-server, which
    # reads it itself, the service's group) can read, in the form the engine reads; the other engine's copy goes.
    user, group, mode = config.key_file_owner
    readers = "root only" if group == "root" else f"root and the {group} group only"
    secrets = known.secret(
        name=f"Write the API key to {config.key_file} ({readers})",
        content=config.key_file_text(site_secret(config.api_key_file)),
        dest=config.key_file,
        mode=f"{mode:o}",
        user=user,
        group=group,
    )
    known.absent(name=f"Remove the other engine's copy of the key ({config.unused_key_file})",
                 path=config.unused_key_file)  # fmt: skip
    _prefix_capture(config, known)  # after /etc/clawlan is made: the capture's sandbox hides it
    unit = known.put(
        name=f"Install {UNIT}", src=StringIO(unit_text(config)), dest=unit_path, mode="644", create_remote_dir=False
    )
    changed = (venv, build, ready_check, startup_record, warm_up, model, settings, secrets, unit)
    service(
        name=f"Run {UNIT} (restarted only when its build, model, settings or unit changed)",
        unit=UNIT,
        daemon_reload_on=(unit,),
        restart_on=changed,
    )
    if config.compute == VULKAN:
        serving_on_gpu(
            name=f"Check that {UNIT} runs every layer on the {config.vulkan_driver} Vulkan device (its start-up log)",
            unit=UNIT,
            driver=config.vulkan_driver,
        )


def _prefix_capture(config: ModelServerConfig, known) -> None:
    """The service that keeps the gateway's prompt prefix from the ingress's mirror of every chat, and the socket
    systemd holds for it (``known``: the role's host_files)."""
    program = known.put(
        name="Install the prompt prefix capture (the system prompt and tools of the chats the ingress mirrors to it)",
        src=str(PROGRAMS / "prefix-capture.py"),
        dest=CAPTURE,
        mode="644",
        create_remote_dir=False,
    )
    socket_unit = known.put(
        name=f"Install {CAPTURE_UNIT}.socket",
        src=StringIO(capture_socket_text(config)),
        dest=CAPTURE_SOCKET_FILE,
        mode="644",
        create_remote_dir=False,
    )
    service_unit = known.put(
        name=f"Install {CAPTURE_UNIT}.service",
        src=StringIO(capture_service_text(config)),
        dest=CAPTURE_SERVICE_FILE,
        mode="644",
        create_remote_dir=False,
    )
    # Restarting the socket restarts the service too (it requires the socket); the service alone restarts on its own
    # changes, while systemd keeps the socket and the mirrors that arrive meanwhile.
    service(
        name=f"Run {CAPTURE_UNIT}.socket (restarted only when it changed)",
        unit=f"{CAPTURE_UNIT}.socket",
        daemon_reload_on=(socket_unit, service_unit),
        restart_on=(socket_unit,),
    )
    # Its socket starts it: after a reboot it stays stopped until the first chat, which is no drift.
    service(
        name=f"Run {CAPTURE_UNIT}.service (restarted only when its program or unit changed)",
        unit=f"{CAPTURE_UNIT}.service",
        restart_on=(program, service_unit),
        on_demand=True,
    )


def runtime_packages(config: ModelServerConfig) -> list[str]:
    driver = DRIVER_RUNTIME_PACKAGES[config.vulkan_driver] if config.compute == VULKAN else ()
    return [*COMPUTE_RUNTIME_PACKAGES[config.compute], *driver]


def _gtt(config: ModelServerConfig):
    """On unified memory the model lives in the GTT, which ttm sizes at boot: the limit is written (and a GTT an
    earlier deploy set is removed where none applies), and the deploy says while the live one is not it yet."""
    if not config.gtt_gib:
        why = "the model is in RAM (model_server_compute cpu)" if config.compute == CPU else "lavapipe's memory is RAM"
        gtt_limit(name=f"No GTT limit in {GTT_CONF}: {why}", gtt_gib=0, none_because=why)
        return
    gtt_limit(
        name=f"Limit the GPU's GTT to {config.gtt_gib} GiB in {GTT_CONF} and the initramfs (a reboot applies it)",
        gtt_gib=config.gtt_gib,
        none_because="",
    )
    gtt_in_effect(name=f"Check that the live GTT is {config.gtt_gib} GiB (a new limit needs a reboot)",
                  gtt_gib=config.gtt_gib)  # fmt: skip


def unit_text(config: ModelServerConfig) -> str:
    return render(
        "model_server/clawlan-model-server.service.j2",
        engine=config.engine,
        user=USER,
        venv=VENV,
        server=f"{SERVER_DIR}/llama-server",
        key_file=KEY_FILE,
        config_file=CONFIG_FILE,
        secrets_file=SECRETS_FILE,
        await_ready=AWAIT_READY,
        record_startup=RECORD_STARTUP,
        startup_record=STARTUP_RECORD,
        startup_markers=" ".join(systemd_quoted(marker) for marker in MARKERS),
        mlock=config.mlock,
        gpu=config.gpu_layers != 0,
        vulkan=config.compute == VULKAN,
        render_group=RENDER_GROUP,
        jits_shaders=config.compute == VULKAN and config.vulkan_driver == LAVAPIPE,
        shader_cache=SHADER_CACHE,
        warm_up=WARM_UP,
        slots=config.parallel_slots,
        prefix_file=PREFIX_FILE,
        warm_marker=WARM_MARKER,
        all_slots_marker=ALL_SLOTS_MARKER,
        runtime_directory=RUNTIME_DIR,
    )


def capture_socket_text(config: ModelServerConfig) -> str:
    return render("model_server/clawlan-prefix-capture.socket.j2", socket=CAPTURE_SOCKET, group=config.capture_group)


def capture_service_text(config: ModelServerConfig) -> str:
    return render(
        "model_server/clawlan-prefix-capture.service.j2",
        unit=CAPTURE_UNIT,
        user=USER,
        venv=VENV,
        program=CAPTURE,
        prefix_file=PREFIX_FILE,
        max_bytes=config.capture_max_bytes,
        state_directory=CAPTURE_STATE_DIR,
        key_dir=posixpath.dirname(KEY_FILE),
    )


def systemd_quoted(word: str) -> str:
    """One argument of an Exec= line, spaces and all: double-quoted, refusing what would need escaping (quotes,
    backslashes, systemd's % specifiers and $ variables), as the constant markers need none."""
    if any(c in word for c in '"\\%$') or not word.isprintable():
        raise ValueError(f"{word!r} needs escaping in an Exec= line")
    return f'"{word}"'
