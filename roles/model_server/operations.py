"""Operations of the model_server role: the llama-cpp-python build (through a wheelhouse) and the model file."""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
from pathlib import Path

from pyinfra import host
from pyinfra.api import FunctionCommand, OperationError, operation
from pyinfra.facts.files import FileContents
from pyinfra.operations import files

from roles.common.python import PIP
from roles.model_server.facts import BuildTarget, FreeMiB, ModelFile

REMOTE_WHEELHOUSE = "/var/cache/clawlan/wheelhouse"
BUILD_PACKAGES = ("build-essential", "cmake", "python3-dev")


def build_key(version: str, cmake_args: str, target: str) -> str:
    """Names one build: a change of version, flags or target machine is a different wheel; nothing else is."""
    text = f"llama-cpp-python[server]=={version}\n{' '.join(cmake_args.split())}\n{target}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_native(cmake_args: str) -> bool:
    # llama.cpp builds for the build machine's CPU unless told otherwise.
    return "-DGGML_NATIVE=OFF" not in cmake_args.split()


@operation()
def llama_cpp_python(venv: str, version: str, cmake_args: str, build_packages: tuple[str, ...], wheelhouse_dir: str):
    """Install ``llama-cpp-python[server]==version`` built with ``cmake_args`` into ``venv``.

    The wheels are built once per build key (version + flags + target machine), on the host, and kept
    in the control machine's ``wheelhouse_dir``; any later install of the same key takes seconds.
    """
    key = build_key(version, cmake_args, host.get_fact(BuildTarget, native=is_native(cmake_args)))
    key_file = f"{venv}/.clawlan-build-key"
    if (host.get_fact(FileContents, path=key_file) or [""])[0].strip() == key:
        host.noop(f"llama-cpp-python {version} installed (build {key})")
        return

    local_tar = Path(wheelhouse_dir).expanduser() / f"{key}.tar"
    remote_dir, tar = shlex.quote(f"{REMOTE_WHEELHOUSE}/{key}"), shlex.quote(f"{REMOTE_WHEELHOUSE}/{key}.tar")
    pip = shlex.quote(f"{venv}/bin/pip")
    requirement = shlex.quote(f"llama-cpp-python[server]=={version}")
    yield f"mkdir -p {remote_dir}"
    if local_tar.exists():
        yield from files.put._inner(src=str(local_tar), dest=f"{REMOTE_WHEELHOUSE}/{key}.tar")
        yield f"tar -C {remote_dir} -xf {tar}"
    else:
        packages = " ".join(shlex.quote(p) for p in (*BUILD_PACKAGES, *build_packages))
        yield f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {packages}"
        yield (
            f"{PIP} CMAKE_ARGS={shlex.quote(cmake_args)} {pip} wheel --quiet --no-cache-dir "
            f"--wheel-dir {remote_dir} {requirement}"
        )
        yield f"tar -C {remote_dir} -cf {tar} ."
        yield FunctionCommand(_keep_wheelhouse, (f"{REMOTE_WHEELHOUSE}/{key}.tar", str(local_tar)), {})
    yield (
        f"{PIP} {pip} install --quiet --no-index --find-links {remote_dir} --force-reinstall {requirement}"
        f" && echo {shlex.quote(key)} > {shlex.quote(key_file)} && rm -rf {remote_dir} {tar}"
    )


def _keep_wheelhouse(state, host, remote: str, local: str) -> bool:
    """Runs at execution time: copy the freshly built wheels to the control machine's wheelhouse."""
    target = Path(local)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    if not host.get_file(remote, str(partial)):
        raise OperationError(f"could not fetch {remote} from {host.name}")
    partial.replace(target)  # only a complete archive ever carries the key's name
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
        # --continue-at - resumes a partial file left by an interrupted run.
        yield (f"curl --fail --location --silent --show-error --continue-at - --output {partial} {shlex.quote(source)}")
    else:
        local = sha256_file(source)  # memoised: pyinfra plans, then runs, this operation
        if local != sha256:
            raise OperationError(
                f"model_server_model_source {source} has sha256 {local}, the inventory pins {sha256}: "
                "nothing was copied and the model in service is unchanged"
            )
        # host.put_file, not files.put: files.put would sha1 the (45 GB) source on every pass.
        yield FunctionCommand(_upload, (source, f"{path}.partial"), {})
    # Every value is one quoted word: the source (a URL) is never read by the shell.
    arrived, pins = shlex.quote(f"{source} arrived with sha256 "), shlex.quote(f", the inventory pins {sha256}")
    yield (
        f"actual=$(sha256sum < {partial} | cut -d' ' -f1); if [ \"$actual\" != {shlex.quote(sha256)} ]; then"
        f' rm -f {partial}; echo {arrived}"$actual"{pins} >&2; exit 1; fi'
    )
    yield f"chmod 644 {partial} && mv {partial} {quoted}"
    yield _record(path, sha256)


def _upload(state, host, local: str, remote: str) -> bool:
    """Runs at execution time: copy the model from the control machine to the host."""
    sudo = {"_sudo": True} if host.data.get("_sudo") else {}
    if not host.put_file(local, remote, **sudo):
        raise OperationError(f"could not copy {local} to {host.name}:{remote}")
    return True


def _record(path: str, sha256: str) -> str:
    quoted = shlex.quote(path)
    return f"echo {shlex.quote(sha256)} $(stat -c '%s %Y' {quoted}) > {shlex.quote(path + '.sha256')}"


def sha256_file(path: str) -> str:
    stat = os.stat(path)
    return _sha256_file(path, stat.st_size, stat.st_mtime_ns)


@functools.cache
def _sha256_file(path: str, size: int, mtime_ns: int) -> str:
    """Keyed by size and mtime too, so a file replaced during a run is hashed again."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()
