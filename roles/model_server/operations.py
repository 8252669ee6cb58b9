"""Operations of the model_server role: the llama-cpp-python build (through a wheelhouse), the model file, and the
proof that a GPU host serves from its GPU."""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from io import StringIO
from pathlib import Path

from pyinfra import host, logger, state
from pyinfra.api import FunctionCommand, OperationError, operation
from pyinfra.facts.files import FileContents

from roles.common import progress, transfer
from roles.common.files import sha256_file, upload, whole_file
from roles.common.locks import BUILD_REQUIREMENTS, REQUIREMENTS, Lock, without_requirement
from roles.common.python import PIP
from roles.model_server.config import GTT_CONF, gtt_modprobe_line
from roles.model_server.facts import (
    BuildTarget,
    CandidateVersions,
    FreeMiB,
    GpuKernel,
    GttLimitFiles,
    GttTotals,
    ModelFile,
    StartupLog,
)
from roles.model_server.gpu import FIRMWARE_PREFIX, gpu_kernel_problems, gtt_mismatch
from roles.model_server.offload import offload_problem, read_startup_log
from roles.model_server.settings import CPU, VULKAN

REMOTE_WHEELHOUSE = "/var/cache/clawlan/wheelhouse"
# ccache keeps the compiled objects between builds: a new pin, flag or compute backend recompiles only the files it
# changes (the CPU build after a Vulkan one reuses almost all of it). Paths under the wheelhouse are hashed relative to
# the build directory, so builds of different keys share objects. Bounded: the backend's disk holds the model.
CCACHE_DIR = "/var/cache/clawlan/ccache"
BUILD_ENV = (
    f"CCACHE_DIR={CCACHE_DIR} CCACHE_BASEDIR={REMOTE_WHEELHOUSE} CCACHE_NOHASHDIR=true CCACHE_MAXSIZE=2G"
    " CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache"
)
# The sha256 of the GTT file the initramfs was last built with, written once update-initramfs succeeded.
GTT_INITRAMFS_STAMP = "/var/lib/clawlan/gtt-initramfs.sha256"
BUILD_PACKAGES = ("build-essential", "cmake", "python3-dev", "ccache")
# What a compute backend adds to the build: spirv-headers is needed by the Vulkan CMake and pulled in by neither of
# the others, so without it the configure step fails.
COMPUTE_BUILD_PACKAGES = {CPU: (), VULKAN: ("libvulkan-dev", "glslc", "spirv-headers")}


# llama-server from the same source tree and build directory as the wheel: the second configure reuses ggml and
# libllama and compiles only the server. No web UI (OpenClaw is the UI; its assets are not in the source
# distribution), no tests or examples, no OpenSSL (nginx terminates TLS). $ORIGIN run paths let the server
# and its shared libraries move from the build directory to the host's server directory together.
SERVER_CMAKE_ARGS = (
    "-DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF"
    " -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_RPATH_USE_ORIGIN=ON"
)
# A GPU backend goes into llama-server only: llama-cpp-python's wheel stays the CPU engine it is (a GPU host is refused
# that engine), and the server's configure adds the backend to the build directory the wheel left.
COMPUTE_CMAKE_ARGS = {CPU: "", VULKAN: "-DGGML_VULKAN=ON"}
# The pinned source uses vk::LayerSettingEXT, which Debian 12's Vulkan headers (1.3.239) lack, and its glslc (2023.2)
# has neither cooperative matrices nor integer dot products.
NO_VULKAN_BUILD_ON = ("debian12",)


def server_cmake_args(compute: str) -> str:
    return f"{SERVER_CMAKE_ARGS} {COMPUTE_CMAKE_ARGS[compute]}".strip()


def build_key(lock: Lock, cmake_args: str, target: str, compute: str = CPU, toolchain: tuple[str, ...] = ()) -> str:
    """Names one build: a change of lock (version or any hash), flags, target machine, compute backend or that
    backend's ``toolchain`` (the versions of its build packages) is a different build.

    One build holds both engines (the wheel and llama-server), so switching engine never compiles. A CPU build is
    named as it was before backends were: the wheelhouse archives of CPU sites stay theirs.
    """
    flags = " ".join(cmake_args.split())
    text = f"{lock.package}=={lock.version} {lock.digest}\n{flags}\n{target}\nserver: {server_cmake_args(compute)}"
    if compute != CPU:
        text += f"\ncompute: {compute} {' '.join(toolchain)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_native(cmake_args: str) -> bool:
    # llama.cpp builds for the build machine's CPU unless told otherwise.
    return "-DGGML_NATIVE=OFF" not in cmake_args.split()


@operation()
def llama_cpp_build(
    venv: str,
    server_dir: str,
    lock: Lock,
    cmake_args: str,
    build_packages: tuple[str, ...],
    wheelhouse_dir: str,
    compute: str = CPU,
):
    """Install llama-cpp-python and its dependencies, exactly as ``lock`` pins them, into ``venv``, and the
    llama-server built from the same source into ``server_dir``.

    The build runs once per build key, on the host: pip checks every download (the source distribution, the
    build backend, each dependency) against the lock's hashes, and refuses anything else before it is used.
    The wheels and the server are kept in the control machine's ``wheelhouse_dir`` as one archive with its
    own sha256 beside it (what is built here has no registry hash): a later install of the same key is checked
    against that and takes seconds. The dependencies install with ``--require-hashes`` either way.
    """
    target = host.get_fact(BuildTarget, native=is_native(cmake_args))
    toolchain = ()
    if compute != CPU:
        if (system := target.split("-")[2]) in NO_VULKAN_BUILD_ON:
            raise OperationError(
                f"{host.name}: model_server_compute {compute} needs Debian 13: the pinned llama.cpp's Vulkan backend "
                f"does not build against the Vulkan headers and glslc of {system}; nothing was installed"
            )
        toolchain = host.get_fact(CandidateVersions, packages=COMPUTE_BUILD_PACKAGES[compute])
    key = build_key(lock, cmake_args, target, compute, toolchain)
    key_file = f"{venv}/.clawlan-build-key"
    if (host.get_fact(FileContents, path=key_file) or [""])[0].strip() == key:
        host.noop(f"llama-cpp-python {lock.version} and llama-server installed (build {key})")
        return

    local_tar = Path(wheelhouse_dir).expanduser() / f"{key}.tar"
    recorded = _recorded_sha256(local_tar)
    work, tar = f"{REMOTE_WHEELHOUSE}/{key}", f"{REMOTE_WHEELHOUSE}/{key}.tar"
    wheels, server = shlex.quote(f"{work}/wheels"), shlex.quote(f"{work}/server")
    pip = shlex.quote(f"{venv}/bin/pip")
    yield f"rm -rf {shlex.quote(work)} {shlex.quote(tar)} && mkdir -p {wheels}"
    dependencies = StringIO(without_requirement(lock.text(REQUIREMENTS), lock.package))
    yield upload(dependencies, f"{work}/dependencies.txt")
    if recorded:
        yield upload(str(local_tar), tar, progress="sending the build from the control machine's wheelhouse")
        check = shlex.quote(f"{recorded}  {tar}")
        refused = shlex.quote(f"{tar} does not match the sha256 recorded for it in {wheelhouse_dir}: not installed")
        yield f"echo {check} | sha256sum --check --quiet --strict || {{ echo {refused} >&2; exit 1; }}"
        yield f"tar -C {shlex.quote(work)} -xf {shlex.quote(tar)}"
    else:
        yield from _build(work, lock, cmake_args, (*COMPUTE_BUILD_PACKAGES[compute], *build_packages), compute)
        yield f"tar -C {shlex.quote(work)} -cf {shlex.quote(tar)} wheels server"
        yield FunctionCommand(_keep_wheelhouse, (tar, str(local_tar)), {})
    wheel = f"{wheels}/{lock.package.replace('-', '_')}-{shlex.quote(lock.version)}-*.whl"
    yield (
        f"{PIP} {pip} install --quiet --no-index --find-links {wheels} --require-hashes"
        f" -r {shlex.quote(f'{work}/dependencies.txt')}"
    )
    yield f"{PIP} {pip} install --quiet --no-index --no-deps --force-reinstall {wheel}"
    # A new directory renamed into place: the running server's files are never written over.
    new, old, target = (shlex.quote(f"{server_dir}{suffix}") for suffix in (".new", ".old", ""))
    yield (
        f"rm -rf {new} {old} && mv {server} {new} && {{ [ ! -e {target} ] || mv {target} {old}; }}"
        f" && mv {new} {target} && rm -rf {old}"
    )
    yield f"echo {shlex.quote(key)} > {shlex.quote(key_file)} && rm -rf {shlex.quote(work)} {shlex.quote(tar)}"


def _build(work: str, lock: Lock, cmake_args: str, build_packages: tuple[str, ...], compute: str):
    """The commands that build the wheels (llama-cpp-python's compiled, the rest fetched) and llama-server."""
    packages = " ".join(shlex.quote(p) for p in (*BUILD_PACKAGES, *build_packages))
    yield progress.phase(
        "installing the build tools",
        f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {packages}",
    )
    for name in (REQUIREMENTS, BUILD_REQUIREMENTS):
        yield upload(StringIO(lock.text(name)), f"{work}/{name}")
    builder, wheels, source, build = (shlex.quote(f"{work}/{name}") for name in ("builder", "wheels", "src", "build"))
    # The build backend comes from its own lock, not from an isolated environment pip fills unchecked.
    yield (
        f"python3 -m venv {builder} && {PIP} {builder}/bin/pip install --quiet --require-hashes"
        f" -r {shlex.quote(f'{work}/{BUILD_REQUIREMENTS}')}"
    )
    # Every download is checked against the lock; every package but llama-cpp-python must be a registry wheel.
    yield progress.phase(
        f"downloading {lock.package}'s source and its dependencies' wheels",
        f"{PIP} {builder}/bin/pip download --quiet --no-cache-dir --require-hashes --no-build-isolation"
        f" --only-binary :all: --no-binary {shlex.quote(lock.package)} --dest {wheels}"
        f" -r {shlex.quote(f'{work}/{REQUIREMENTS}')}",
    )
    # One source tree and one build directory for both engines.
    yield f'mkdir {source} && set -- {wheels}/*.tar.gz && tar -C {source} --strip-components=1 -xzf "$1" && rm -f "$1"'
    # Without pip's isolation nothing adds ninja, and CMake's make generator builds one file at a time.
    yield progress.phase(
        f"compiling {lock.package} {lock.version} for {compute} (the longest step; its time scales with the cores)",
        f"{PIP} {BUILD_ENV} CMAKE_ARGS={shlex.quote(cmake_args)} CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)"
        f" {builder}/bin/pip wheel --quiet --no-cache-dir --no-build-isolation --no-deps"
        f" --config-settings=build-dir={build} --wheel-dir {wheels} {source}",
    )
    log = shlex.quote(f"{work}/server-build.log")
    yield progress.phase(
        "compiling llama-server",
        f"{{ export {BUILD_ENV} && cmake -S {source} -B {build} {server_cmake_args(compute)}"
        f" && cmake --build {build} --target llama-server"
        f" --parallel $(nproc); }} > {log} 2>&1 || {{ tail -n 40 {log} >&2; exit 1; }}",
    )
    server = shlex.quote(f"{work}/server")
    yield f"mkdir {server} && cp -a {build}/bin/llama-server {build}/bin/*.so* {server}/"


def _recorded_sha256(local_tar: Path) -> str | None:
    """The sha256 recorded when the archive was fetched, or None when there is none (it is built again).

    An archive that no longer matches its record was changed on the control machine: refused, not rebuilt
    over, so the operator sees it.
    """
    record = local_tar.with_name(local_tar.name + ".sha256")
    if not (local_tar.exists() and record.exists()):
        return None
    recorded = record.read_text().split()[0]
    actual = sha256_file(str(local_tar))
    if actual != recorded:
        raise OperationError(
            f"{local_tar} has sha256 {actual}, {record.name} records {recorded}: the wheelhouse was changed "
            "after it was built. Delete both files to build again; nothing was installed."
        )
    return recorded


def _keep_wheelhouse(state, host, remote: str, local: str) -> bool:
    """Runs at execution time: copy the freshly built wheels to the control machine's wheelhouse."""
    target = Path(local)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    transfer.fetch(host, remote, partial)
    # Only a complete archive ever carries the key's name, and its hash is recorded before it does.
    target.with_name(target.name + ".sha256").write_text(f"{sha256_file(str(partial))}  {target.name}\n")
    partial.replace(target)
    return True


@operation()
def model_file(path: str, source: str, sha256: str, size_gib: float):
    """Keep the model pinned by ``sha256`` at ``path``, from a control-machine path or an http(s) URL.

    A new file is written beside ``path`` and moved into place only once its hash matches, so a
    failed or corrupt transfer never replaces the model in service. Downloads resume.
    """
    present = host.get_fact(ModelFile, path=path)
    if present and present["sha256"] == sha256:
        if present["recorded"]:
            host.noop(f"{path} is the pinned model")
        else:
            yield _record(path, sha256)
        return

    free = host.get_fact(FreeMiB, path=path)
    needed = int(size_gib * 1024) + 1
    if free < needed:
        raise OperationError(f"{host.name}: {free} MiB free for {path}, the model needs {needed} MiB")

    quoted, partial = shlex.quote(path), shlex.quote(f"{path}.partial")
    yield f"mkdir -p {shlex.quote(str(Path(path).parent))}"
    if source.startswith(("http://", "https://")):
        # --continue-at - resumes a partial file left by an interrupted run; a server that cannot resume (curl's
        # exit 33) gets the whole file asked again. When the transfer stops (the disk filled, the server went away)
        # the partial file stays for the next deploy, and the error says so.
        directory = shlex.quote(str(Path(path).parent))
        stopped = shlex.quote(f"{host.name}: the download of {source} stopped")
        curl, into = "curl --fail --location --silent --show-error", f"--output {partial} {shlex.quote(source)}"
        command = (
            f"{curl} --continue-at - {into} || {{ status=$?;"
            f' if [ "$status" = 33 ]; then rm -f {partial}; {curl} {into} && status=0 || status=$?; fi;'
            ' [ "$status" = 0 ] || { printf \'%s (curl exit %s) with %s MiB left on the disk under %s: %s bytes of it'
            " are kept in %s for the next deploy to resume; the model in service is unchanged\\n'"
            f' {stopped} "$status" "$(df -Pm {directory} | awk \'NR==2 {{print $4}}\')" {directory}'
            f' "$(stat -c %s {partial} 2>/dev/null || echo 0)" {partial} >&2; exit "$status"; }}; }}'
        )
        yield progress.download(f"downloading the model to {path}", command, f"{path}.partial", int(size_gib * 2**30))
    else:
        local = sha256_file(source)  # memoised: pyinfra plans, then runs, this operation
        if local != sha256:
            raise OperationError(
                f"model_server_model_source {source} has sha256 {local}, the inventory pins {sha256}: "
                "nothing was copied and the model in service is unchanged"
            )
        # host.put_file, not files.put: files.put would sha1 the (45 GB) source on every pass.
        yield upload(source, f"{path}.partial", progress=f"sending the model to {path}")
    # Every value is one quoted word: the source (a URL) is never read by the shell.
    arrived, pins = shlex.quote(f"{source} arrived with sha256 "), shlex.quote(f", the inventory pins {sha256}")
    yield (
        f"actual=$(sha256sum < {partial} | cut -d' ' -f1); if [ \"$actual\" != {shlex.quote(sha256)} ]; then"
        f' rm -f {partial}; echo {arrived}"$actual"{pins} >&2; exit 1; fi'
    )
    yield f"chmod 644 {partial} && mv {partial} {quoted}"
    yield _record(path, sha256)


def _record(path: str, sha256: str) -> str:
    quoted = shlex.quote(path)
    return f"echo {shlex.quote(sha256)} $(stat -c '%s %Y' {quoted}) > {shlex.quote(path + '.sha256')}"


@operation()
def serving_on_gpu(unit: str, driver: str):
    """Fail unless ``unit``'s llama-server put every layer on a Vulkan device of ``driver`` when it last started.

    A CPU fallback (no device found, or Mesa's CPU driver where a GPU was meant) or a partial offload answers chats
    too, only many times slower: nothing else would tell. Read at execution, after the unit's (re)start; a planned
    run has not started it yet.
    """
    if not state.is_executing:
        return
    startup = read_startup_log(host.get_fact(StartupLog, unit=unit) or ())
    problem = offload_problem(startup, driver)
    if problem:
        raise OperationError(f"{host.name}: {problem} (from the journal of {unit} since it last started)")
    host.noop(f"{unit} has {startup.summary()}")
    yield from ()  # a check, no command: pyinfra still runs an operation as a generator


def gtt_conf_text(gtt_gib: int) -> str:
    """The modprobe file of a GTT of ``gtt_gib`` GiB; "" for none."""
    if not gtt_gib:
        return ""
    return (
        f"# Written by clawlan (model_server_gtt_gib: {gtt_gib} GiB): the RAM the GPU may map, the model's home.\n"
        "# ttm reads it when it loads, from the initramfs: a new value needs update-initramfs and a reboot.\n"
        f"{gtt_modprobe_line(gtt_gib)}\n"
    )


@operation()
def gtt_limit(gtt_gib: int, none_because: str):
    """Keep ttm's page limit (the GPU's GTT) at ``gtt_gib`` GiB in GTT_CONF and in the initramfs; 0 removes a limit
    an earlier deploy set (``none_because`` says why there is none).

    ttm reads its options when it loads, at boot from the initramfs: a new value needs update-initramfs (every
    initramfs built later, for a new kernel too, reads /etc/modprobe.d again) and a reboot. Nothing restarts here.
    The file's sha256 is recorded once update-initramfs succeeded, so a run stopped between the two finishes the
    job next time instead of leaving an initramfs with the old value.
    """
    text = gtt_conf_text(gtt_gib)
    wanted = hashlib.sha256(text.encode()).hexdigest() if text else ""
    conf, built = host.get_fact(GttLimitFiles, path=GTT_CONF, stamp=GTT_INITRAMFS_STAMP)
    if (conf, built) == (wanted, wanted):
        host.noop(f"{GTT_CONF} and the initramfs limit the GTT to {gtt_gib} GiB" if text else f"no GTT: {none_because}")
        return
    quoted, stamp = shlex.quote(GTT_CONF), shlex.quote(GTT_INITRAMFS_STAMP)
    if conf != wanted:
        if text:
            yield from whole_file._inner(StringIO(text), GTT_CONF, mode="644", create_remote_dir=False)
        else:
            yield f"rm -f {quoted}"
    record = f"mkdir -p {shlex.quote(posixpath.dirname(GTT_INITRAMFS_STAMP))} && echo {wanted} > {stamp}"
    yield f"update-initramfs -u && {record if text else f'rm -f {stamp}'}"


@operation()
def gtt_in_effect(gtt_gib: int):
    """Warn while the GPU's live GTT is not ``gtt_gib`` GiB: the deploy goes on, the new size takes effect after a
    reboot, and until then LLM-12 fails. Read at execution, once: a warning at planning too would say it twice."""
    if not state.is_executing:
        return
    totals = host.get_fact(GttTotals)
    problem = gtt_mismatch(totals, gtt_gib)
    if problem:
        logger.warning(f"{host.name}: {problem}: {gtt_gib} GiB takes effect after a reboot, reboot the box")
    else:
        host.noop(f"the live GTT is {gtt_gib} GiB on {', '.join(sorted(totals))}")
    yield from ()


@operation()
def gpu_kernel_ready():
    """Fail unless the kernel and firmware can drive gfx1151 (gpu.py); warn on a kernel known bad for it.

    Read at execution: the runtime packages this same deploy installs just before bring the firmware, so what a
    planning pass sees may be missing still. It runs before the build, which would otherwise take minutes for a GPU
    the kernel cannot drive.
    """
    if not state.is_executing:
        return
    release, firmware = host.get_fact(GpuKernel)
    errors, warnings = gpu_kernel_problems(release, firmware)
    if errors:
        raise OperationError(f"{host.name}: " + "; ".join(errors) + "; nothing was built")
    for warning in warnings:
        logger.warning(f"{host.name}: {warning}")
    host.noop(f"kernel {release}, and {len(firmware)} {FIRMWARE_PREFIX} firmware files")
    yield from ()
