"""The committed locks: every pinned version has one, every package in it is pinned by hash and comes over https."""

from __future__ import annotations

import json
import re

import pytest

from roles.common.locks import (
    MODEL_SERVER,
    OPENCLAW,
    PACKAGE_LOCK,
    REPOSITORY_LOCKS,
    REQUIREMENTS,
    LockMissing,
    read_lock,
    without_requirement,
)
from tools.locks import CONTROL_LOCK, PINS, committed_locks, pinned_version

PYTHON_LOCKS = [CONTROL_LOCK, *sorted(REPOSITORY_LOCKS.glob("*/*/*.txt"))]
NPM_LOCKS = sorted((REPOSITORY_LOCKS / OPENCLAW).glob(f"*/{PACKAGE_LOCK}"))


def entries(text: str) -> list[str]:
    """A pip requirements file's entries, each with its continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("package", sorted(PINS))
def test_every_pinned_version_has_a_committed_lock(package):
    read_lock(REPOSITORY_LOCKS, package, pinned_version(package))  # raises LockMissing


def test_a_version_without_a_lock_is_named_with_the_command_that_writes_it(tmp_path):
    with pytest.raises(LockMissing, match=r"no lock for openclaw 2099\.1\.1 .*make locks LOCK=openclaw==2099\.1\.1"):
        read_lock(tmp_path, OPENCLAW, "2099.1.1")


@pytest.mark.parametrize("path", PYTHON_LOCKS, ids=lambda p: str(p.relative_to(REPOSITORY_LOCKS)))
def test_every_python_requirement_is_pinned_exactly_and_by_hash(path):
    found = entries(path.read_text())
    assert found, f"{path} names no package"
    for entry in found:
        assert re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==\S+ ", entry), f"not pinned exactly: {entry[:80]}"
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"no sha256: {entry[:80]}"
        assert not re.search(r"--(index-url|extra-index-url|find-links|trusted-host)|http://", entry), entry[:80]


@pytest.mark.parametrize("path", NPM_LOCKS, ids=lambda p: p.parent.name)
def test_every_npm_package_has_an_integrity_hash_and_comes_from_the_registry_over_https(path):
    packages = json.loads(path.read_text())["packages"]
    version = path.parent.name
    assert packages["node_modules/openclaw"]["version"] == version
    for name, package in packages.items():
        if not name or package.get("inBundle"):  # the root; files inside a package's own (hashed) tarball
            continue
        assert package["resolved"].startswith("https://registry.npmjs.org/"), name
        assert re.fullmatch(r"sha512-[A-Za-z0-9+/]+=*", package["integrity"]), name


def test_each_lock_folder_is_complete():
    for package, version in committed_locks():
        read_lock(REPOSITORY_LOCKS, package, version)


def test_the_server_wheel_built_on_the_host_is_left_out_of_the_dependencies_it_installs_by_hash():
    lock = read_lock(REPOSITORY_LOCKS, MODEL_SERVER, pinned_version(MODEL_SERVER))
    requirements = lock.text(REQUIREMENTS)
    dependencies = without_requirement(requirements, "llama_cpp_python")  # any spelling of the name
    names = {entry.split("==")[0] for entry in entries(dependencies)}
    assert "llama-cpp-python" not in names
    assert names == {entry.split("==")[0] for entry in entries(requirements)} - {"llama-cpp-python"}
    assert "numpy" in names and "uvicorn" in names


def test_a_lock_digest_changes_with_any_hash_in_it():
    lock = read_lock(REPOSITORY_LOCKS, MODEL_SERVER, pinned_version(MODEL_SERVER))
    text = lock.text(REQUIREMENTS)
    first_hash = re.search(r"sha256:([0-9a-f])", text)
    flipped = text[: first_hash.start(1)] + ("0" if first_hash.group(1) != "0" else "1") + text[first_hash.end(1) :]
    tampered = type(lock)(lock.package, lock.version, ((REQUIREMENTS, flipped), *lock.files[1:]))
    assert tampered.digest != lock.digest
