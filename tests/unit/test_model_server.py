"""model_server: build keys, the environment the server reads, and its hardened unit."""

from __future__ import annotations

import pytest

from lab.paths import TINY_MODEL_SHA256
from lab.tiny_model import generate
from roles.common.locks import Lock
from roles.common.names import HostSpec
from roles.common.templates import render
from roles.model_server.config import build_model_server_config, model_file_name
from roles.model_server.operations import build_key, is_native
from roles.model_server.settings import PORTABLE_CPU, ModelServerSettings

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


def test_server_environment():
    env = config().environment()
    assert env["HOST"] == "127.0.0.1"  # loopback only: nginx is the LAN's way in
    assert env["INTERRUPT_REQUESTS"] == "false"  # one client must not cancel another's stream
    assert env["LOGITS_ALL"] == "false"  # else every prompt token's logits, and a copy per prompt-cache entry
    assert env["N_THREADS"] == env["N_THREADS_BATCH"] == "16"  # 'auto' = physical cores
    assert env["CACHE"] == "true" and env["CACHE_SIZE"] == str(2048 * 1024 * 1024)
    assert env["N_CTX"] == "32768"
    assert "API_KEY" not in env and "CHAT_FORMAT" not in env
    assert config(threads=3, chat_format="chatml").environment()["N_THREADS"] == "3"
    assert config(chat_format="chatml").environment()["CHAT_FORMAT"] == "chatml"


def test_settings_file_renders_every_value():
    text = render("model_server/model-server.conf.j2", environment=config().environment())
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert dict(line.split("=", 1) for line in lines) == config().environment()


def unit(**context):
    defaults = dict(
        user="llm",
        venv="/opt/clawlan/llama-cpp",
        config_file="/etc/clawlan/model-server.conf",
        secrets_file="/etc/clawlan/model-server.env",
        await_ready="/opt/clawlan/llama-cpp/clawlan-await-ready.py",
        mlock=True,
        gpu=False,
    )
    return render("model_server/clawlan-model-server.service.j2", **{**defaults, **context})


def test_unit_takes_the_key_from_a_file_and_is_hardened():
    text = unit()
    assert "EnvironmentFile=/etc/clawlan/model-server.env" in text
    assert "API_KEY" not in text
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


def test_unit_memlock_and_devices_follow_settings():
    assert "LimitMEMLOCK=infinity" in unit(mlock=True)
    assert "LimitMEMLOCK" not in unit(mlock=False)
    assert "PrivateDevices=yes" in unit(gpu=False)
    assert "PrivateDevices=no" in unit(gpu=True)  # a GPU build needs /dev/dri or /dev/kfd


def test_tiny_model_is_reproducible(tmp_path):
    assert generate(tmp_path / "tiny.gguf") == TINY_MODEL_SHA256
