"""Settings of the model_server role: inventory keys ``model_server_*``, one line each with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from roles.common.settings import setting
from roles.common.values.containers import ListOf, OrEmpty
from roles.common.values.numbers import Choice, Either, Flag, Number, Port, WholeNumber
from roles.common.values.paths import ModelSource
from roles.common.values.text import DebPackage, Flags, Name, Sha256, Version

PORTABLE_CPU = "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DGGML_OPENMP=OFF"
LLAMA_SERVER = "llama-server"
LLAMA_CPP_PYTHON = "llama-cpp-python"
CPU = "cpu"
VULKAN = "vulkan"
RADV = "radv"
LAVAPIPE = "lavapipe"
# Keys only one engine reads: given for the other engine they are refused, not silently ignored.
ENGINE_ONLY = {
    "parallel_slots": LLAMA_SERVER,
    "cache_reuse_tokens": LLAMA_SERVER,
    "context_checkpoints": LLAMA_SERVER,
    "chat_template": LLAMA_SERVER,
    "chat_format": LLAMA_CPP_PYTHON,
}
# Keys only one compute backend reads, refused for the other likewise.
COMPUTE_ONLY = {
    "gpu_layers": CPU,
    "mlock": CPU,
    "flash_attention": VULKAN,
    "gtt_gib": VULKAN,
}
# Keys only one Vulkan driver reads (with compute vulkan), refused for the other likewise: lavapipe's device memory is
# the process' own RAM, so it has no GTT to size.
DRIVER_ONLY = {
    "gtt_gib": RADV,
}


@dataclass(frozen=True)
class ModelServerSettings:
    engine: Literal["llama-server", "llama-cpp-python"] = setting(
        LLAMA_SERVER, "llama.cpp's own server (parallel slots, /health, /metrics) or llama-cpp-python's (one slot).",
        Choice(LLAMA_SERVER, LLAMA_CPP_PYTHON),
    )  # fmt: skip
    version: str = setting(
        "0.3.36", "llama-cpp-python release, pinned and locked (locks/): the wheelhouse is keyed by its lock.",
        Version("pep440"),
    )  # fmt: skip
    compute: Literal["cpu", "vulkan"] = setting(
        CPU,
        "Where the model runs. vulkan: every layer on the GPU through llama.cpp's Vulkan backend (Debian 13: the "
        "pinned source does not build against Debian 12's Vulkan headers). No rocm: Debian's ROCm has no gfx1151 "
        "code objects, and AMD's needs its own repository and kernel >= 6.18.4.",
        Choice(CPU, VULKAN),
    )
    vulkan_driver: Literal["radv", "lavapipe"] = setting(
        RADV,
        "The Vulkan device: radv = a real AMD GPU (Mesa's RADV, render node opened); lavapipe = Mesa's CPU driver "
        "(the lab: the real build, loader, sandbox and offload check, on no GPU).",
        Choice(RADV, LAVAPIPE),
    )
    gtt_gib: int | Literal["auto"] = setting(
        "auto",
        "radv only: GiB of RAM the GPU may map (GTT: on unified memory the model and its KV cache live there; the "
        "kernel's default is about half of RAM). auto: the model and its KV cache fill 3/4 of it (at least 2 GiB "
        "left for compute buffers and the driver, use under the 85 % alert), in whole GiB, at most RAM - "
        "base_system_reserve_gib. Written as ttm's "
        "pages_limit in /etc/modprobe.d: takes effect after a reboot.",
        Either(WholeNumber(1, 16384), Choice("auto")),
    )
    cmake_args: str = setting(
        PORTABLE_CPU,
        "Build flags of the wheel and the server; portable CPU by default. A GPU backend is model_server_compute, "
        "which adds its own flags.",
        Flags(),
    )
    build_packages: tuple[str, ...] = setting(
        (), "Extra Debian packages the build needs (model_server_compute brings its backend's own).",
        ListOf(DebPackage()),
    )  # fmt: skip
    model_source: str = setting(
        "", "Where the model comes from: a path on the control machine or an http(s) URL.", ModelSource()
    )
    model_sha256: str = setting("", "The model file's sha256; nothing else is ever served.", Sha256())
    model_size_gib: float = setting(
        45.0, "Size of the model file; Qwen3-Next-80B-A3B Q4_K_M is about 45 GiB. Sizes the memory budget.",
        Number(0, 4096),
    )  # fmt: skip
    model_alias: str = setting("local-model", "The model id clients ask for (/v1/models).", Name())
    context_tokens: int = setting(
        32768, "Context per chat (per slot): the gateway's prompts are ~13k tokens with tools; 32k leaves room.",
        WholeNumber(2048, 1048576),
    )  # fmt: skip
    parallel_slots: int = setting(
        4, "Chats served at once (llama-server --parallel); each slot holds its own context in the KV cache.",
        WholeNumber(1, 64),
    )  # fmt: skip
    kv_cache_kib_per_token: float = setting(
        24.0, "KV cache per context token; Qwen3-Next-80B: 12 attention layers x 2 KV heads x 256 x K,V x f16.",
        Number(0.001, 65536),
    )  # fmt: skip
    max_answer_tokens: int = setting(4096, "Longest answer a client may ask for.", WholeNumber(16, 262144))
    threads: int | Literal["auto"] = setting(
        "auto", "Generation threads; 'auto' = the host's physical cores (two teams on two cores was 10x slower).",
        Either(WholeNumber(1, 1024), Choice("auto")),
    )  # fmt: skip
    batch_tokens: int = setting(
        512,
        "n_batch: tokens per server step, prompts and every slot's next token together, so one step is what the "
        "other chats wait for a token while a prompt is read: ~1 s at the reference GPU's pp512 of ~531 tokens/s "
        "(llama-server's default 2048 would be ~4 s).",
        WholeNumber(32, 16384),
    )
    ubatch_tokens: int = setting(
        512, "n_ubatch: physical batch; at most batch_tokens. llama-server's own default, on any device.",
        WholeNumber(32, 16384),
    )  # fmt: skip
    gpu_layers: int = setting(
        0, "cpu compute only: layers offloaded by a GPU build made by hand (-1 = all). vulkan offloads all.",
        WholeNumber(-1, 1000),
    )  # fmt: skip
    mlock: bool = setting(
        True,
        "cpu compute only: lock the weights in RAM so swap never takes them (LimitMEMLOCK=infinity). On the GPU they "
        "are in device memory, and the server's mmap+mlock would force mmap back on (--load-mode auto is used).",
        Flag(),
    )
    flash_attention: Literal["auto", "on", "off"] = setting(
        "auto",
        "vulkan compute only (the CPU path keeps the server's default, auto). auto: on wherever the layer's device "
        "runs it (the pinned server checks each layer), off where that op would fall back to the CPU.",
        Choice("auto", "on", "off"),
    )
    chat_format: str = setting(
        "", "llama-cpp-python chat format; empty uses the template inside the GGUF.",
        OrEmpty(Name(), "the template inside the GGUF"),
    )  # fmt: skip
    chat_template: str = setting(
        "", "llama-server built-in Jinja chat template (e.g. chatml); empty uses the template inside the GGUF.",
        OrEmpty(Name(), "the template inside the GGUF"),
    )  # fmt: skip
    prompt_cache_mib: int = setting(
        2048, "RAM prompt cache: the gateway resends the same ~13k-token prefix, so a warm TTFT needs it.",
        WholeNumber(0, 1048576),
    )  # fmt: skip
    cache_reuse_tokens: int = setting(
        0, "llama-server --cache-reuse: reuse cached chunks this long by shifting them. 0 (off): on a hybrid model "
        "(Qwen3-Next) shifting changes answers (docs/roles.md: the prompt cache).",
        WholeNumber(0, 1048576),
    )  # fmt: skip
    context_checkpoints: int = setting(
        8, "llama-server --ctx-checkpoints: recurrent states each slot keeps to reuse a prompt from (a hybrid model "
        "reuses one only through them); each costs recurrent_state_mib of RAM (the server's default, 32, ~9 GiB).",
        WholeNumber(0, 256),
    )  # fmt: skip
    recurrent_state_mib: float = setting(
        75.0, "One recurrent state (a slot's, or one checkpoint's); Qwen3-Next-80B: 36 gated-delta-net layers x 32 "
        "heads x 128 x 128 x f32, and the convolution's, ~75 MiB. 0 for a model without recurrent layers.",
        Number(0, 65536),
    )  # fmt: skip
    port: int = setting(8000, "Loopback port of the model server; only the local TLS proxy talks to it.", Port())
