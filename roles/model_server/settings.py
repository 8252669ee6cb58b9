"""Settings of the model_server role: inventory keys ``model_server_*``, one line each with the reason."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from roles.common.settings import between, setting

PORTABLE_CPU = "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DGGML_OPENMP=OFF"


def _sha256(value: str) -> str | None:
    return None if re.fullmatch(r"[0-9a-f]{64}", value) else "must be 64 lowercase hex digits (sha256sum's output)"


def _source(value: str) -> str | None:
    if value.startswith(("http://", "https://")) or value.startswith("/"):
        return None
    return f"must be an absolute path on the control machine or an http(s) URL, got {value!r}"


def _name(value: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value) else f"{value!r} is not a plain model name"


@dataclass(frozen=True)
class ModelServerSettings:
    version: str = setting("0.3.36", "llama-cpp-python release, pinned: the wheelhouse is keyed by it.")
    cmake_args: str = setting(
        PORTABLE_CPU,
        "Build flags; portable CPU by default. Vulkan: '-DGGML_VULKAN=ON -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF'.",
    )
    build_packages: tuple[str, ...] = setting(
        (), "Extra Debian packages the build needs, e.g. ('libvulkan-dev', 'glslc') for Vulkan."
    )
    model_source: str = setting(
        "", "Where the model comes from: a path on the control machine or an http(s) URL.", _source
    )
    model_sha256: str = setting("", "The model file's sha256; nothing else is ever served.", _sha256)
    model_size_gib: float = setting(
        45.0, "Size of the model file; Qwen3-Next-80B-A3B Q4_K_M is about 45 GiB. Sizes the memory budget.",
        between(0, 4096),
    )  # fmt: skip
    model_alias: str = setting("local-model", "The model id clients ask for (/v1/models).", _name)
    context_tokens: int = setting(
        32768, "n_ctx: the gateway's prompts are ~13k tokens with tool definitions; 32k leaves room to answer.",
        between(2048, 1048576),
    )  # fmt: skip
    max_answer_tokens: int = setting(4096, "Longest answer a client may ask for.", between(16, 262144))
    threads: int | Literal["auto"] = setting(
        "auto", "Generation threads; 'auto' = the host's physical cores (two teams on two cores was 10x slower)."
    )
    batch_tokens: int = setting(512, "n_batch: prompt tokens evaluated per step.", between(32, 16384))
    ubatch_tokens: int = setting(512, "n_ubatch: physical batch; at most batch_tokens.", between(32, 16384))
    gpu_layers: int = setting(0, "Layers offloaded to a GPU build (-1 = all); 0 for the CPU build.", between(-1, 1000))
    mlock: bool = setting(True, "Lock the weights in RAM so swap never takes them (LimitMEMLOCK=infinity).")
    chat_format: str = setting("", "llama-cpp-python chat format; empty uses the template inside the GGUF.")
    prompt_cache_mib: int = setting(
        2048, "RAM prompt cache: the gateway resends the same ~13k-token prefix, so a warm TTFT needs it.",
        between(0, 1048576),
    )  # fmt: skip
    port: int = setting(
        8000, "Loopback port of the model server; only the local TLS proxy talks to it.", between(1, 65535)
    )
