"""model_server: build keys, the environment the server reads, and its hardened unit."""

from __future__ import annotations

import pytest

from lab.paths import TINY_MODEL_SHA256
from lab.tiny_model import generate
from roles.common.locks import Lock
from roles.common.names import HostSpec
from roles.common.templates import render
from roles.model_server.config import build_model_server_config, model_file_name
from roles.model_server.deploy import unit_text
from roles.model_server.operations import build_key, is_native
from roles.model_server.settings import LLAMA_CPP_PYTHON, LLAMA_SERVER, PORTABLE_CPU, ModelServerSettings

BACKEND = HostSpec("back", "10.0.0.20", "backend", 128, 16)
SETTINGS = ModelServerSettings(model_source="https://nas/models/qwen.gguf", model_sha256="ab" * 32)


def lock(version="0.3.36", numpy_hash="ab"):
    requirements = f"numpy==2.4.6 \\\n    --hash=sha256:{numpy_hash * 32}\n"
    return Lock("llama-cpp-python", version, (("requirements.txt", requirements), ("build-requirements.txt", "")))


def config(**changes):
    settings = ModelServerSettings(**{**SETTINGS.__dict__, **changes})
    return build_model_server_config(settings, BACKEND, "/cache/wheelhouse", "/state/secrets/key", lock())


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
    assert f["--cache-ram"] == "2048" and f["--cache-reuse"] == "256"
    assert f["--n-predict"] == "4096"
    assert f["--load-mode"] == "mmap+mlock"
    assert "--api-key" not in f and "--api-key-file" not in f  # the key is the unit's credential, never a flag here
    for switch in ("--jinja", "--metrics", "--no-slots", "--no-webui", "--no-kv-unified"):
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
    assert generate(tmp_path / "tiny.gguf") == TINY_MODEL_SHA256
