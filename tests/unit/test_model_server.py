"""model_server: build keys, the environment the server reads, and its hardened unit."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from lab.paths import LLAMA_TOY_MODEL_SHA256
from lab.tiny_model import generate
from roles.common.hardening import BASELINE
from roles.common.locks import Lock
from roles.common.names import HostSpec
from roles.common.templates import render
from roles.inventory.load import build_site
from roles.model_server.config import UNIT, VENV, build_model_server_config, model_file_name
from roles.model_server.deploy import AWAIT_READY, COMPUTE_RUNTIME_PACKAGES, RECORD_STARTUP, systemd_quoted, unit_text
from roles.model_server.facts import STARTUP_RECORD, StartupLog
from roles.model_server.offload import MARKERS, offload_problem, read_startup_log
from roles.model_server.operations import (
    COMPUTE_BUILD_PACKAGES,
    SERVER_CMAKE_ARGS,
    build_key,
    is_native,
    server_cmake_args,
)
from roles.model_server.settings import (
    CPU,
    LAVAPIPE,
    LLAMA_CPP_PYTHON,
    LLAMA_SERVER,
    PORTABLE_CPU,
    RADV,
    VULKAN,
    ModelServerSettings,
)
from tests.support.sites import good_hosts, problems_of, site_with, with_change
from tests.support.units import directives

BACKEND = HostSpec("back", "10.0.0.20", "backend", 128, 16)
SETTINGS = ModelServerSettings(model_source="https://nas/models/qwen.gguf", model_sha256="ab" * 32)


def lock(version="0.3.36", numpy_hash="ab"):
    requirements = f"numpy==2.4.6 \\\n    --hash=sha256:{numpy_hash * 32}\n"
    return Lock("llama-cpp-python", version, (("requirements.txt", requirements), ("build-requirements.txt", "")))


def config(**changes):
    settings = ModelServerSettings(**{**SETTINGS.__dict__, **changes})
    return build_model_server_config(
        settings, BACKEND, "/cache/wheelhouse", "/state/secrets/key", lock(), system_reserve_gib=4.0,
        max_request_mib=16, ingress_group="www-data",
    )  # fmt: skip


def test_build_key_is_stable_and_ignores_spacing():
    assert build_key(lock(), PORTABLE_CPU, "x86_64-cp311-debian12") == build_key(
        lock(), "  " + PORTABLE_CPU.replace(" ", "   "), "x86_64-cp311-debian12"
    )


@pytest.mark.parametrize(
    "changed, flags, target",
    [
        (lock("0.3.37"), PORTABLE_CPU, "x86_64-cp311-debian12"),
        (lock(numpy_hash="cd"), PORTABLE_CPU, "x86_64-cp311-debian12"),  # one hash in the lock: another build
        (lock(), "-DGGML_VULKAN=ON -DGGML_NATIVE=OFF", "x86_64-cp311-debian12"),
        (lock(), PORTABLE_CPU, "aarch64-cp311-debian12"),
        (lock(), PORTABLE_CPU, "x86_64-cp312-debian13"),
    ],
)
def test_a_change_of_lock_flags_or_target_is_another_build(changed, flags, target):
    assert build_key(changed, flags, target) != build_key(lock(), PORTABLE_CPU, "x86_64-cp311-debian12")


def test_native_builds_are_tied_to_the_cpu():
    assert not is_native(PORTABLE_CPU)
    assert is_native("-DGGML_VULKAN=ON")


def test_model_file_name_from_url_or_path():
    assert model_file_name("https://nas/models/qwen.gguf?token=x") == "qwen.gguf"
    assert model_file_name("/srv/models/qwen.gguf") == "qwen.gguf"
    assert config().model_path == "/var/lib/clawlan/models/qwen.gguf"


def test_llama_cpp_python_environment():
    env = config(engine=LLAMA_CPP_PYTHON).environment()
    assert env["HOST"] == "127.0.0.1"  # loopback only: nginx is the LAN's way in
    assert env["INTERRUPT_REQUESTS"] == "false"  # one client must not cancel another's stream
    assert env["LOGITS_ALL"] == "false"  # else every prompt token's logits, and a copy per prompt-cache entry
    assert env["N_THREADS"] == env["N_THREADS_BATCH"] == "16"  # 'auto' = physical cores
    assert env["CACHE"] == "true" and env["CACHE_SIZE"] == str(2048 * 1024 * 1024)
    assert env["N_CTX"] == "32768"  # one slot: the context per chat is the server's
    assert "API_KEY" not in env and "CHAT_FORMAT" not in env
    assert config(engine=LLAMA_CPP_PYTHON, threads=3).environment()["N_THREADS"] == "3"
    assert config(engine=LLAMA_CPP_PYTHON, chat_format="chatml").environment()["CHAT_FORMAT"] == "chatml"


def flags(**changes) -> dict[str, str | None]:
    """llama-server's flags: {flag: value, or None for a switch}."""
    words = config(**changes).environment()["LLAMA_SERVER_ARGS"].split(" ")
    parsed: dict[str, str | None] = {}
    for word in words:
        if word.startswith("--"):
            parsed[word] = None
            last = word
        else:
            assert parsed[last] is None, f"{last} has two values"
            parsed[last] = word
    return parsed


def test_llama_server_is_the_default_and_reads_its_flags_from_the_settings_file():
    env = config().environment()
    assert config().engine == LLAMA_SERVER
    assert env["PORT"] == "8000" and env["READY_CHECK"] == "health"
    f = flags()
    assert f["--host"] == "127.0.0.1" and f["--port"] == "8000"
    assert f["--model"] == "/var/lib/clawlan/models/qwen.gguf"
    assert f["--threads"] == f["--threads-batch"] == "16"
    assert f["--cache-ram"] == "2048" and f["--cache-reuse"] == "0"  # shifting changes a hybrid model's answers
    assert f["--ctx-checkpoints"] == "8"  # not the server's 32: ~9 GiB of recurrent states on the reference model
    assert f["--n-predict"] == "4096"
    assert f["--load-mode"] == "mmap+mlock"
    assert "--api-key" not in f and "--api-key-file" not in f  # the key is the unit's credential, never a flag here
    for switch in ("--jinja", "--metrics", "--no-slots", "--no-webui", "--no-kv-unified", "--cache-idle-slots"):
        assert f[switch] is None, switch


@pytest.mark.parametrize("slots, context", [(1, 8192), (4, 32768), (8, 16384)])
def test_every_slot_gets_its_own_context(slots, context):
    f = flags(parallel_slots=slots, context_tokens=context)
    assert f["--parallel"] == str(slots)
    assert f["--ctx-size"] == str(slots * context)  # llama-server splits --ctx-size evenly over the slots


@pytest.mark.parametrize(
    "changes, flag, value",
    [
        ({"gpu_layers": -1}, "--n-gpu-layers", "all"),  # llama-server's -1 means "auto", not "all"
        ({"gpu_layers": 20}, "--n-gpu-layers", "20"),
        ({"chat_template": "chatml"}, "--chat-template", "chatml"),
        ({"batch_tokens": 1024, "ubatch_tokens": 256}, "--ubatch-size", "256"),
    ],
)
def test_llama_server_flags_follow_the_settings(changes, flag, value):
    assert flags(**changes)[flag] == value


def test_no_mlock_no_load_mode_and_no_template_by_default():
    assert "--load-mode" not in flags(mlock=False)
    assert "--chat-template" not in flags()


def test_settings_file_renders_every_value():
    for engine in (LLAMA_SERVER, LLAMA_CPP_PYTHON):
        text = render("model_server/model-server.conf.j2", environment=config(engine=engine).environment())
        lines = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert dict(line.split("=", 1) for line in lines) == config(engine=engine).environment()


@pytest.mark.parametrize("engine", [LLAMA_SERVER, LLAMA_CPP_PYTHON])
def test_unit_is_hardened_for_either_engine(engine):
    text = unit_text(config(engine=engine))
    assert "API_KEY=" not in text
    for directive in (
        "User=llm",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "IPAddressDeny=any",
        "Restart=on-failure",
        "ExecStartPost=",
    ):
        assert directive in text, directive


def test_llama_server_reads_its_key_from_a_file_never_from_the_environment():
    text = unit_text(config())
    assert "ExecStart=/opt/clawlan/llama-cpp/server/llama-server $LLAMA_SERVER_ARGS" in text
    assert "--api-key-file /etc/clawlan/model-server.key" in text
    assert "model-server.env" not in text
    assert config().key_file_owner == ("root", "llm", 0o640)
    assert config(engine=LLAMA_CPP_PYTHON).key_file_owner == ("root", "root", 0o600)


def test_llama_cpp_python_reads_its_key_from_a_root_only_environment_file():
    text = unit_text(config(engine=LLAMA_CPP_PYTHON))
    assert "EnvironmentFile=/etc/clawlan/model-server.env" in text
    assert "ExecStart=/opt/clawlan/llama-cpp/bin/python -m llama_cpp.server" in text
    assert "--api-key-file" not in text


def test_unit_memlock_and_devices_follow_settings():
    assert "LimitMEMLOCK=infinity" in unit_text(config(mlock=True))
    assert "LimitMEMLOCK" not in unit_text(config(mlock=False))
    assert "PrivateDevices=yes" in unit_text(config(gpu_layers=0))
    assert "PrivateDevices=no" in unit_text(config(gpu_layers=-1))  # a GPU build needs /dev/dri or /dev/kfd


def test_tiny_model_is_reproducible(tmp_path):
    assert generate(tmp_path / "tiny.gguf") == LLAMA_TOY_MODEL_SHA256


# --- compute backends: cpu (the default, above) and vulkan on a real GPU (radv) or Mesa's CPU driver (lavapipe) ---


def gpu(driver=RADV, **changes):
    return config(compute=VULKAN, vulkan_driver=driver, **changes)


@pytest.mark.parametrize("driver", [RADV, LAVAPIPE])
def test_vulkan_offloads_every_layer_and_never_mlocks(driver):
    f = dict(flags(compute=VULKAN, vulkan_driver=driver))
    assert f["--n-gpu-layers"] == "all"
    assert f["--load-mode"] == "auto"  # not the mmap+mlock the (default) mlock setting gives the CPU path
    assert f["--flash-attn"] == "auto"
    assert f["--ctx-size"] == str(4 * 32768)  # explicit: llvmpipe reports the host's RAM as device memory
    assert not gpu(driver).mlock and "LimitMEMLOCK" not in unit_text(gpu(driver))


def test_the_cpu_path_states_no_device_flags():
    f = flags()
    assert f["--n-gpu-layers"] == "0" and "--flash-attn" not in f
    assert not any(key.startswith("GGML_VK") for key in config().environment())


def test_vulkan_environment_follows_the_driver():
    radv, lavapipe = gpu(RADV).environment(), gpu(LAVAPIPE).environment()
    assert radv["GGML_VK_VISIBLE_DEVICES"] == lavapipe["GGML_VK_VISIBLE_DEVICES"] == "0"
    assert "GGML_VK_DISABLE_F16" not in radv and "GGML_VK_DISABLE_COOPMAT" not in radv
    assert lavapipe["GGML_VK_DISABLE_F16"] == lavapipe["GGML_VK_DISABLE_COOPMAT"] == "1"
    text = render("model_server/model-server.conf.j2", environment=lavapipe)
    assert "GGML_VK_VISIBLE_DEVICES=0\n" in text and "--load-mode auto" in text


@pytest.mark.parametrize("threads", [1, 3])
def test_lavapipes_workers_are_the_servers_threads(threads):
    # lavapipe computes on the CPU: left alone it starts a worker per online CPU, beyond the cores the server has.
    assert gpu(LAVAPIPE, threads=threads).environment()["LP_NUM_THREADS"] == str(threads)
    assert "LP_NUM_THREADS" not in gpu(RADV, threads=threads).environment()


def service_lines(text: str) -> list[str]:
    return [f"{key}={value}" for key, value in directives(text)]


def test_the_cpu_unit_opens_no_device():
    lines = service_lines(unit_text(config()))
    assert "PrivateDevices=yes" in lines and "MemoryDenyWriteExecute=yes" in lines
    assert not [line for line in lines if line.startswith(("Device", "SupplementaryGroups", "CacheDirectory"))]


@pytest.mark.parametrize("driver, write_execute", [(RADV, "yes"), (LAVAPIPE, "no")])
def test_a_vulkan_unit_opens_the_gpu_and_nothing_else(driver, write_execute):
    lines = service_lines(unit_text(gpu(driver)))
    for line in (
        "PrivateDevices=no",  # PrivateDevices=yes would hide /dev/dri; the device policy closes the rest
        "DevicePolicy=closed",
        "DeviceAllow=char-drm rw",
        "SupplementaryGroups=render",
        "PrivateUsers=yes",
        "CacheDirectory=clawlan-model-server",
        "Environment=MESA_SHADER_CACHE_DIR=/var/cache/clawlan-model-server",
        f"MemoryDenyWriteExecute={write_execute}",  # lavapipe JITs with LLVM
    ):
        assert lines.count(line) == 1, line
    assert not [line for line in lines if "kfd" in line]  # ROCm's device, not Vulkan's


@pytest.mark.parametrize("driver", [RADV, LAVAPIPE])
def test_every_departure_of_a_vulkan_unit_is_explained(driver):
    text = unit_text(gpu(driver))
    found = directives(text)
    comments = " ".join(line for line in text.splitlines() if line.startswith("#"))
    for key, value in BASELINE.items():
        if [v for k, v in found if k == key] != ([value] if isinstance(value, str) else list(value)):
            assert key in comments, key
    for key in ("DevicePolicy", "DeviceAllow", "SupplementaryGroups", "CacheDirectory"):
        assert key in comments, key


def test_vulkan_builds_llama_server_with_its_packages_and_flags():
    assert server_cmake_args(CPU) == SERVER_CMAKE_ARGS
    assert server_cmake_args(VULKAN).split() == [*SERVER_CMAKE_ARGS.split(), "-DGGML_VULKAN=ON"]
    assert COMPUTE_BUILD_PACKAGES[VULKAN] == ("libvulkan-dev", "glslc", "spirv-headers")
    assert COMPUTE_RUNTIME_PACKAGES[VULKAN] == ("libvulkan1", "mesa-vulkan-drivers")
    assert COMPUTE_BUILD_PACKAGES[CPU] == COMPUTE_RUNTIME_PACKAGES[CPU] == ()


TOOLCHAIN = ("glslc:2025.2-1", "libvulkan-dev:1.4.309.0-1", "spirv-headers:1.4.309.0-1")


def test_the_build_key_names_the_backend_and_its_toolchain():
    target = "x86_64-cp313-debian13"
    cpu = build_key(lock(), PORTABLE_CPU, target)
    assert build_key(lock(), PORTABLE_CPU, target, CPU, ()) == cpu  # a CPU site keeps its wheelhouse archives
    vulkan = build_key(lock(), PORTABLE_CPU, target, VULKAN, TOOLCHAIN)
    assert vulkan != cpu
    assert build_key(lock(), PORTABLE_CPU, target, VULKAN, (*TOOLCHAIN[:2], "spirv-headers:1.4.313.0-1")) != vulkan


def refused(**data) -> tuple[set, str]:
    return problems_of(with_change(lambda h: h["back"][1].update({f"model_server_{k}": v for k, v in data.items()})))


def test_a_vulkan_site_is_valid():
    site = site_with(back={"model_server_compute": "vulkan", "model_server_vulkan_driver": "lavapipe"})
    assert site.model_server_config("back").compute == VULKAN


@pytest.mark.parametrize(
    "data, key",
    [
        ({"compute": "rocm"}, "model_server_compute"),
        ({"compute": "vulkan", "engine": LLAMA_CPP_PYTHON}, "model_server_compute"),
        ({"compute": "vulkan", "mlock": True}, "model_server_mlock"),
        ({"compute": "vulkan", "gpu_layers": 20}, "model_server_gpu_layers"),
        ({"flash_attention": "on"}, "model_server_flash_attention"),
        ({"compute": "vulkan", "vulkan_driver": "amdvlk"}, "model_server_vulkan_driver"),
        ({"cmake_args": "-DGGML_VULKAN=ON -DGGML_NATIVE=OFF"}, "model_server_cmake_args"),
    ],
)
def test_a_setting_the_compute_backend_does_not_read_is_refused_naming_host_and_key(data, key):
    problems, _ = refused(**data)
    assert problems == {("back", key)}


def test_mlock_on_the_gpu_is_refused_naming_both_keys():
    _, message = refused(compute="vulkan", mlock=True)
    assert "'model_server_mlock'" in message and "model_server_compute is vulkan" in message


# What llama-server logs at start-up, built from the pinned build's format strings (roles/model_server/offload.py).
LAVAPIPE_LOG = """\
ggml_vulkan: Found 1 Vulkan devices:
ggml_vulkan: 0 = llvmpipe (LLVM 19.1.7, 256 bits) (llvmpipe) | uma: 0 | fp16: 0 | bf16: 0 | warp size: 8 | shared \
memory: 32768 | int dot: 0 | matrix cores: none
llama_prepare_model_devices: using device Vulkan0 (llvmpipe (LLVM 19.1.7, 256 bits)) (unknown id) - 23975 MiB free
load_tensors: offloading output layer to GPU
load_tensors: offloading 2 repeating layers to GPU
load_tensors: offloaded 3/3 layers to GPU
"""
RADV_LOG = """\
llama_prepare_model_devices: using device Vulkan0 (AMD Radeon 8060S Graphics (RADV GFX1151)) (0000:c5:00.0) - \
98304 MiB free
load_tensors: offloaded 49/49 layers to GPU
"""
NO_DEVICE_LOG = """\
ggml_vulkan: No devices found.
warning: no usable GPU found, --gpu-layers option will be ignored
"""


def test_the_start_up_log_names_the_device_and_the_layers():
    startup = read_startup_log(LAVAPIPE_LOG.splitlines())
    assert startup.devices == (("Vulkan0", "llvmpipe (LLVM 19.1.7, 256 bits)"),)
    assert startup.offloaded == (3, 3) and not startup.no_device
    assert offload_problem(startup, LAVAPIPE) is None
    assert offload_problem(read_startup_log(RADV_LOG.splitlines()), RADV) is None
    assert read_startup_log(RADV_LOG.splitlines()).summary() == (
        "49 of 49 layers on Vulkan0 (AMD Radeon 8060S Graphics (RADV GFX1151))"
    )


@pytest.mark.parametrize(
    "log, driver, cause",
    [
        (NO_DEVICE_LOG, LAVAPIPE, "GGML_VK_VISIBLE_DEVICES=0"),  # a silent CPU fallback
        (NO_DEVICE_LOG, RADV, "SupplementaryGroups=render"),
        ("", RADV, "restart it"),  # nothing logged (or rotated away): nothing proves the GPU
        ("load_tensors: offloaded 0/49 layers to GPU", RADV, "named no device"),
        (LAVAPIPE_LOG, RADV, "not on the radv device"),  # the render node was missing: only Mesa's CPU driver left
        (RADV_LOG.replace("49/49", "30/49"), RADV, "30 of 49 layers"),  # a partial offload
        (RADV_LOG.splitlines()[0], RADV, 'no "offloaded N/M layers to GPU"'),
    ],
)
def test_a_cpu_fallback_or_a_partial_offload_is_named(log, driver, cause):
    assert cause in offload_problem(read_startup_log(log.splitlines()), driver)


def test_the_start_up_log_is_read_with_our_constants_only():
    command = StartupLog().command(UNIT)
    assert "_SYSTEMD_UNIT=clawlan-model-server.service" in command and '"_PID=$pid"' in command
    for marker in MARKERS:
        assert shlex.quote(marker) in command
    kept = [line for line in LAVAPIPE_LOG.splitlines() if any(marker in line for marker in MARKERS)]
    assert read_startup_log(kept) == read_startup_log(LAVAPIPE_LOG.splitlines())
    assert read_startup_log([line for line in NO_DEVICE_LOG.splitlines() if any(m in line for m in MARKERS)]).no_device


def test_the_vulkan_driver_may_stay_while_the_cpu_serves():
    """The driver says what the box's GPU is: switching the compute to the CPU for a while leaves it true."""
    hosts = good_hosts()
    hosts["back"][1].update(model_server_compute="cpu", model_server_vulkan_driver="lavapipe")
    assert build_site(hosts).model_server_config("back").compute == "cpu"


def test_a_gpu_unit_records_its_start_up_lines_as_root_after_it_is_ready():
    """The recorder runs after the readiness check (the model is loaded, its lines logged), as root (+) to read the
    journal, with the markers as separate arguments; the CPU path has no device lines to keep."""
    found = [value for key, value in directives(unit_text(gpu())) if key == "ExecStartPost"]
    assert found[0].endswith(AWAIT_READY)
    assert found[1] == (
        f'+{VENV}/bin/python {RECORD_STARTUP} {STARTUP_RECORD} ": using device " " layers to GPU" '
        '"ggml_vulkan: No devices found" "no usable GPU found"'
    )
    assert not any(RECORD_STARTUP in value for _, value in directives(unit_text(config())))


@pytest.mark.parametrize("word", ['a "quoted" word', "50%", "$HOME", "back\\slash", "new\nline"])
def test_an_exec_argument_that_needs_escaping_is_refused(word):
    with pytest.raises(ValueError, match="needs escaping"):
        systemd_quoted(word)


def fake_commands(directory, **scripts):
    """Executables on a PATH of their own: name -> shell script body."""
    for name, body in scripts.items():
        path = directory / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return {**os.environ, "PATH": f"{directory}:{os.environ['PATH']}"}


def systemctl_reporting(pid: int, start: str) -> str:
    return f'case "$*" in *MainPID*) echo {pid};; *InvocationID*) echo {start};; esac'


JOURNAL = "\n".join(
    [
        "llama_model_load_from_file_impl: using device Vulkan0 (llvmpipe (LLVM 19.1.7, 256 bits)) (0000:00:00.0)"
        " - 1 MiB free",
        "srv  update_slots: all slots are idle",
        "load_tensors: offloaded 3/3 layers to GPU",
    ]
)  # fmt: skip


def test_the_record_of_the_current_start_is_read_and_a_stale_one_is_not(tmp_path):
    """The journal here has rotated the lines away: the record of this start is the proof; a record of an earlier
    start is ignored for the journal (empty), and a stopped unit has no proof at all."""
    record = tmp_path / "startup"
    record.write_text("invocation=abc\n" + "\n".join(line for line in JOURNAL.splitlines() if "srv" not in line) + "\n")

    def lines(pid, start):
        env = fake_commands(tmp_path, systemctl=systemctl_reporting(pid, start), journalctl="true", sleep="true")
        command = StartupLog().command(UNIT, record=str(record))
        return subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, check=True).stdout

    assert offload_problem(read_startup_log(lines(42, "abc").splitlines()), LAVAPIPE) is None
    assert lines(42, "def") == ""  # another start's record, and nothing in the journal
    assert lines(0, "abc") == ""  # not running


def test_the_recorder_keeps_this_starts_marked_lines_only(tmp_path):
    journal = tmp_path / "journal.txt"
    journal.write_text(JOURNAL + "\n")
    asked = tmp_path / "asked"
    env = fake_commands(tmp_path, journalctl=f'echo "$*" > {asked}; cat {journal}')
    record = tmp_path / "startup"
    program = Path(__file__).resolve().parents[2] / "roles/model_server/programs/record-startup.py"
    subprocess.run([sys.executable, str(program), str(record), *MARKERS], env={**env, "INVOCATION_ID": "abc"},
                   check=True, timeout=60)  # fmt: skip
    assert "_SYSTEMD_INVOCATION_ID=abc" in asked.read_text()
    first, *kept = record.read_text().splitlines()
    assert first == "invocation=abc"
    assert kept == [line for line in JOURNAL.splitlines() if "srv" not in line]
    assert oct(record.stat().st_mode & 0o777) == "0o644"
