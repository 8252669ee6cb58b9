"""What the model_server role deploys on the backend, resolved from settings and the host's hardware."""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from roles.common.locks import Lock
from roles.common.names import HostSpec
from roles.common.preflight import Preflight
from roles.common.settings import Problem
from roles.common.values.paths import file_name
from roles.model_server.settings import (
    COMPUTE_ONLY,
    DRIVER_ONLY,
    ENGINE_ONLY,
    LAVAPIPE,
    LLAMA_CPP_PYTHON,
    LLAMA_SERVER,
    RADV,
    VULKAN,
    ModelServerSettings,
)

VENV = "/opt/clawlan/llama-cpp"
# llama-server and the shared libraries it links, from the same build as the venv's llama-cpp-python.
SERVER_DIR = f"{VENV}/server"
MODELS_DIR = "/var/lib/clawlan/models"
CONFIG_FILE = "/etc/clawlan/model-server.conf"
SECRETS_FILE = "/etc/clawlan/model-server.env"  # llama-cpp-python reads its key from the environment
KEY_FILE = "/etc/clawlan/model-server.key"  # llama-server reads it: 0640 root and the service's group
UNIT = "clawlan-model-server.service"
USER = "llm"
# The unit's RuntimeDirectory under /run, which systemd removes when the server stops, and the file the warm-up makes
# in it once the gateway's prompt prefix is evaluated: the ingress answers the balancers' health checks 503 without
# it, so a stopped, starting or restarted server gets no chats until it is warm (programs/warm-up.py).
RUNTIME_DIR = "clawlan-model-server"
WARM_MARKER = f"/run/{RUNTIME_DIR}/warm"
# Made once the warm-up is over for every slot (the others are warmed after WARM_MARKER, in the background): what a
# check of the cache's answers waits for, so that no warm-up request takes a slot from under it.
ALL_SLOTS_MARKER = f"/run/{RUNTIME_DIR}/warm-all-slots"
# The prompt prefix capture: the ingress mirrors every chat's body to its socket, and it keeps the gateway's system
# message(s) and tools in PREFIX_FILE, for the warm-up (programs/prefix-capture.py). Its own StateDirectory, kept
# across reboots; it runs as USER, whose warm-up reads the file.
CAPTURE_UNIT = "clawlan-prefix-capture"  # .socket and .service
CAPTURE_SOCKET = "/run/clawlan-prefix-capture.sock"
CAPTURE_STATE_DIR = "clawlan-prefix-capture"
PREFIX_FILE = f"/var/lib/{CAPTURE_STATE_DIR}/prefix.json"
RENDER_GROUP = "render"  # Debian's udev gives the GPU's render nodes (/dev/dri/renderD*) to it, 0660
# What llama.cpp's Vulkan backend reads from its environment, per device class. It skips CPU-type devices unless one
# is named: without GGML_VK_VISIBLE_DEVICES lavapipe is "No devices found" and a silent CPU fallback. On a real GPU it
# pins the first device, which the Vulkan loader sorts before any CPU driver. F16 and cooperative matrices off on
# lavapipe as upstream's own llvmpipe CI runs it.
VULKAN_ENVIRONMENT = {
    RADV: {"GGML_VK_VISIBLE_DEVICES": "0"},
    LAVAPIPE: {"GGML_VK_VISIBLE_DEVICES": "0", "GGML_VK_DISABLE_F16": "1", "GGML_VK_DISABLE_COOPMAT": "1"},
}
# The GTT: on unified memory the GPU maps system RAM, up to ttm's pages_limit (4 KiB pages), set at module load.
GTT_CONF = "/etc/modprobe.d/clawlan-gtt.conf"
PAGES_PER_GIB = 2**30 // 4096
# An auto GTT is filled to at most three quarters by the model and its KV cache. The rest holds llama.cpp's compute
# buffers (a few hundred MiB at 512-token batches, plus the logits of a 152k vocabulary) and RADV's own allocations,
# and keeps steady use under the GTT alert (ClawlanGpuMemoryHigh, 85 % in use): a GTT sized to the model plus 10 %
# would sit above it for good. The floor covers a small model.
GTT_FILL_FRACTION = 0.75
GTT_MARGIN_MIN_GIB = 2
# How far the live GTT (mem_info_gtt_total) may be from the configured size and still count as it: amdgpu takes
# pages_limit as it is, so this only absorbs rounding to whole pages and MiB.
GTT_TOLERANCE_GIB = 0.5
# Debian components a host's GPU needs beyond main, by Vulkan driver: RADV's firmware (firmware-amd-graphics).
DRIVER_APT_COMPONENTS = {RADV: ("non-free-firmware",), LAVAPIPE: ()}


@dataclass(frozen=True)
class ModelServerConfig:
    engine: str
    compute: str
    vulkan_driver: str  # read with compute vulkan only
    version: str
    cmake_args: str
    build_packages: tuple[str, ...]
    wheelhouse_dir: str  # on the control machine
    model_source: str
    model_sha256: str
    model_path: str
    model_size_gib: float
    model_alias: str
    context_tokens: int  # per chat (slot)
    parallel_slots: int
    max_answer_tokens: int
    threads: int
    batch_tokens: int
    ubatch_tokens: int
    gpu_layers: int
    mlock: bool
    flash_attention: str  # read with compute vulkan only
    gtt_gib: int  # the GPU's GTT (ttm pages_limit) in GiB; 0 where none applies (compute cpu, or lavapipe)
    chat_format: str
    chat_template: str
    prompt_cache_mib: int
    cache_reuse_tokens: int
    context_checkpoints: int
    port: int
    api_key_file: str  # on the control machine
    lock: Lock  # llama-cpp-python and its dependencies, by version and hash
    capture_max_bytes: int  # the ingress's largest request: a longer mirrored body is refused unread
    capture_group: str  # the ingress's workers, the only ones who may send the capture service a chat

    @property
    def key_file(self) -> str:
        """Where the engine reads its API key."""
        return KEY_FILE if self.engine == LLAMA_SERVER else SECRETS_FILE

    @property
    def unused_key_file(self) -> str:
        """The other engine's copy of the key, removed."""
        return SECRETS_FILE if self.engine == LLAMA_SERVER else KEY_FILE

    @property
    def key_file_owner(self) -> tuple[str, str, int]:
        """(user, group, mode): llama-server reads its key as the service user; systemd reads an EnvironmentFile
        as root."""
        return ("root", USER, 0o640) if self.engine == LLAMA_SERVER else ("root", "root", 0o600)

    def key_file_text(self, api_key: str) -> str:
        """The key file as the engine reads it: the key alone, or an EnvironmentFile line."""
        return f"{api_key}\n" if self.engine == LLAMA_SERVER else f"API_KEY={api_key}\n"

    def environment(self) -> dict[str, str]:
        """The settings file of the engine's unit: llama-cpp-python's environment, or llama-server's flags."""
        if self.engine == LLAMA_SERVER:
            # The unit passes $LLAMA_SERVER_ARGS word by word; PORT and READY_CHECK are for the readiness check.
            env = {"PORT": str(self.port), "READY_CHECK": "health", "LLAMA_SERVER_ARGS": " ".join(self.arguments())}
            if self.compute != VULKAN:
                return env
            env |= VULKAN_ENVIRONMENT[self.vulkan_driver]
            if self.vulkan_driver == LAVAPIPE:
                # lavapipe's device is the CPU: its workers are the server's threads (it would start one per online
                # CPU beside the server's own, and take cores the server was not given).
                env["LP_NUM_THREADS"] = str(self.threads)
            return env
        return self._python_environment()

    def arguments(self) -> tuple[str, ...]:
        """llama-server's flags (its parser takes "--flag value", not "--flag=value"). Every value is a validated
        number or name: one word each, no quoting needed."""
        options = {
            "--model": self.model_path,
            "--alias": self.model_alias,
            "--host": "127.0.0.1",
            "--port": self.port,
            # Each slot gets its own context_tokens of KV cache (not unified): a long chat cannot take another's.
            "--parallel": self.parallel_slots,
            "--ctx-size": self.parallel_slots * self.context_tokens,
            "--threads": self.threads,
            "--threads-batch": self.threads,
            "--batch-size": self.batch_tokens,
            "--ubatch-size": self.ubatch_tokens,
            "--n-gpu-layers": "all" if self.gpu_layers == -1 else self.gpu_layers,
            # Prompt reuse: each slot keeps its last prompt (a hybrid model's recurrent layers through context
            # checkpoints); --cache-ram keeps more in RAM for any slot to take.
            "--cache-ram": self.prompt_cache_mib,
            "--ctx-checkpoints": self.context_checkpoints,
            "--cache-reuse": self.cache_reuse_tokens,
            # The default answer length; the gateway asks for max_answer_tokens itself.
            "--n-predict": self.max_answer_tokens,
        }
        if self.chat_template:
            options["--chat-template"] = self.chat_template
        if self.mlock:
            options["--load-mode"] = "mmap+mlock"
        if self.compute == VULKAN:
            # auto maps the file unless a device cannot use the mapping (an integrated GPU, where it loads into device
            # memory instead): stated, so that nothing brings mmap back under the GPU.
            options["--load-mode"] = "auto"
            options["--flash-attn"] = self.flash_attention
            # The pinned server logs where it put the model (the device, "offloaded N/M layers") at verbosity 4 only,
            # and the deploy's proof that the GPU serves reads those lines. The price: about 35 debug lines per chat
            # in the journal, which journald's size limit keeps in bounds.
            options["--verbosity"] = 4
        # /slots would show every slot's prompt, that is people's chats; the web UI is OpenClaw's job.
        # --cache-idle-slots (the pinned server's default, stated): a task's start saves the idle slots' prompts to
        # the --cache-ram cache, which is how the warm-up hands slot 0's prefix to the other slots (warm-up.py).
        switches = ("--no-kv-unified", "--cache-idle-slots", "--jinja", "--metrics", "--no-slots", "--no-webui")
        return (*(str(word) for pair in options.items() for word in pair), *switches)

    def _python_environment(self) -> dict[str, str]:
        """The server's settings as llama-cpp-python reads them from its environment (pydantic settings)."""
        env = {
            "MODEL": self.model_path,
            "MODEL_ALIAS": self.model_alias,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "N_CTX": str(self.context_tokens),
            "N_THREADS": str(self.threads),
            "N_THREADS_BATCH": str(self.threads),
            "N_BATCH": str(self.batch_tokens),
            "N_UBATCH": str(self.ubatch_tokens),
            "N_GPU_LAYERS": str(self.gpu_layers),
            "USE_MLOCK": str(self.mlock).lower(),
            "INTERRUPT_REQUESTS": "false",
            # The server's default (true) computes the output layer for every prompt token and keeps an
            # n_ctx x n_vocab float array, copied into each prompt-cache entry uncounted by CACHE_SIZE: ~20 GB
            # per entry at 32k context and Qwen3's 152k vocabulary. Chats need only the last token's logits.
            "LOGITS_ALL": "false",
            "CACHE": str(self.prompt_cache_mib > 0).lower(),
            "CACHE_TYPE": "ram",
            "CACHE_SIZE": str(self.prompt_cache_mib * 1024 * 1024),
            "VERBOSE": "false",
        }
        if self.chat_format:
            env["CHAT_FORMAT"] = self.chat_format
        return env


def model_file_name(source: str) -> str:
    return file_name(source)


def build_model_server_config(
    settings: ModelServerSettings,
    spec: HostSpec,
    wheelhouse_dir: str,
    api_key_file: str,
    lock: Lock,
    *,
    system_reserve_gib: float,
    max_request_mib: int,
    ingress_group: str,
) -> ModelServerConfig:
    """``system_reserve_gib``: the base role's share of RAM for the system, which the GTT never takes;
    ``max_request_mib``: the largest request the ingress admits; ``ingress_group``: the group its workers run as."""
    vulkan = settings.compute == VULKAN
    return ModelServerConfig(
        engine=settings.engine,
        compute=settings.compute,
        vulkan_driver=settings.vulkan_driver,
        version=settings.version,
        cmake_args=settings.cmake_args,
        build_packages=settings.build_packages,
        wheelhouse_dir=wheelhouse_dir,
        model_source=settings.model_source,
        model_sha256=settings.model_sha256,
        model_path=posixpath.join(MODELS_DIR, model_file_name(settings.model_source)),
        model_size_gib=settings.model_size_gib,
        model_alias=settings.model_alias,
        context_tokens=settings.context_tokens,
        parallel_slots=slots(settings),
        max_answer_tokens=settings.max_answer_tokens,
        threads=spec.cpu_cores if settings.threads == "auto" else settings.threads,
        batch_tokens=settings.batch_tokens,
        ubatch_tokens=settings.ubatch_tokens,
        gpu_layers=-1 if vulkan else settings.gpu_layers,  # all: the deploy proves every layer is on the device
        mlock=settings.mlock and not vulkan,
        flash_attention=settings.flash_attention,
        gtt_gib=gtt_gib(settings, spec.memory_gib, system_reserve_gib),
        chat_format=settings.chat_format,
        chat_template=settings.chat_template,
        prompt_cache_mib=settings.prompt_cache_mib,
        cache_reuse_tokens=settings.cache_reuse_tokens,
        context_checkpoints=settings.context_checkpoints,
        port=settings.port,
        api_key_file=api_key_file,
        lock=lock,
        capture_max_bytes=max_request_mib * 2**20,
        capture_group=ingress_group,
    )


# Seconds an idle keep-alive connection stays open on the model server: cpp-httplib's (llama-server) and uvicorn's
# (llama-cpp-python) default alike. A proxy that keeps connections longer may send a chat down one the server is
# closing at that moment, and that chat fails (a 502: a chat is never resent).
IDLE_CLOSE_S = 5


def health_path(settings: ModelServerSettings) -> str:
    """What says the model server is ready for chats: llama-server's /health answers 200 once the model is loaded
    (503 before); llama-cpp-python's server listens only once it is, and its cheapest authenticated GET is the
    model list."""
    return "/health" if settings.engine == LLAMA_SERVER else "/v1/models"


def slots(settings: ModelServerSettings) -> int:
    """Chats the engine serves at once: llama-cpp-python's server has one slot."""
    return settings.parallel_slots if settings.engine == LLAMA_SERVER else 1


def kv_cache_gib(settings: ModelServerSettings) -> float:
    """The KV cache every slot holds for its whole context, allocated when the server starts."""
    return slots(settings) * settings.context_tokens * settings.kv_cache_kib_per_token / 2**20


def kv_only(settings: ModelServerSettings) -> tuple[str, float, str]:
    """The KV cache alone (what a GPU's GTT holds beside the model): the key to blame, GiB, how it was counted."""
    key = "model_server_parallel_slots" if settings.engine == LLAMA_SERVER else "model_server_context_tokens"
    count = f"{slots(settings)} slot(s) x {settings.context_tokens} tokens x {settings.kv_cache_kib_per_token:g} KiB"
    return key, kv_cache_gib(settings), count


def prompt_reuse_gib(settings: ModelServerSettings) -> float:
    """What llama-server holds in RAM to reuse prompts: every slot's recurrent state and its context checkpoints (a
    hybrid model's), and the host-memory prompt cache (--cache-ram)."""
    if settings.engine != LLAMA_SERVER:
        return 0.0
    states = slots(settings) * (1 + settings.context_checkpoints) * settings.recurrent_state_mib
    return (states + settings.prompt_cache_mib) / 1024


def kv_cache(settings: ModelServerSettings) -> tuple[str, float, str]:
    """For the memory budget: the key to blame, what the server holds beside the model in GiB (the KV cache, and on
    llama-server the recurrent states, checkpoints and prompt cache), and how it was counted."""
    key, _, count = kv_only(settings)
    if settings.engine == LLAMA_SERVER:
        count += (
            f" + {slots(settings)} x (1 + {settings.context_checkpoints} checkpoints) x"
            f" {settings.recurrent_state_mib:g} MiB + {settings.prompt_cache_mib} MiB prompt cache"
        )
    return key, kv_cache_gib(settings) + prompt_reuse_gib(settings), count


def unread_problems(name: str, given: Iterable[str], settings: ModelServerSettings) -> list[Problem]:
    """Keys in the inventory (``given``, without prefix) that only the other engine, the other compute backend or,
    on vulkan, the other driver reads: refused, not silently ignored."""
    given = set(given)
    choices = [("engine", ENGINE_ONLY), ("compute", COMPUTE_ONLY)]
    if settings.compute == VULKAN:  # a key of one driver given on the CPU is already refused as vulkan's
        choices.append(("vulkan_driver", DRIVER_ONLY))
    return [
        Problem(name, f"model_server_{key}", f"is read by {only} only; this host's model_server_{choice} is {chosen}")
        for choice, only_by in choices
        for key in sorted(given & only_by.keys())
        if (only := only_by[key]) != (chosen := getattr(settings, choice))
    ]


def uses_gtt(settings: ModelServerSettings) -> bool:
    """The model lives in GTT: a real AMD GPU on unified memory. lavapipe's device memory is the process' own RAM."""
    return settings.compute == VULKAN and settings.vulkan_driver == RADV


def gtt_need_gib(settings: ModelServerSettings) -> float:
    """What the model server puts in GTT: the model's weights and every slot's KV cache."""
    return settings.model_size_gib + kv_cache_gib(settings)


def gtt_ceiling_gib(memory_gib: float, system_reserve_gib: float) -> int:
    """The largest GTT a host may be given: whole GiB of its RAM once the system has its reserve."""
    return max(math.floor(memory_gib - system_reserve_gib), 0)


def auto_gtt_gib(settings: ModelServerSettings, memory_gib: float, system_reserve_gib: float) -> int:
    """The model and its KV cache with a margin, rounded up to whole GiB, never more than the ceiling."""
    need = gtt_need_gib(settings)
    wanted = math.ceil(max(need / GTT_FILL_FRACTION, need + GTT_MARGIN_MIN_GIB))
    return max(min(wanted, gtt_ceiling_gib(memory_gib, system_reserve_gib)), 1)


def gtt_gib(settings: ModelServerSettings, memory_gib: float, system_reserve_gib: float) -> int:
    """The GTT this host's GPU gets in GiB, or 0 where none applies."""
    if not uses_gtt(settings):
        return 0
    if settings.gtt_gib == "auto":
        return auto_gtt_gib(settings, memory_gib, system_reserve_gib)
    return settings.gtt_gib


def gtt_problems(settings: ModelServerSettings, spec: HostSpec, system_reserve_gib: float) -> list[Problem]:
    """On unified memory the model and its KV cache must fit the GTT, and the GTT must leave the system its reserve.
    The memory budget counts this GTT as the model's share of RAM (roles/base/config.py)."""
    if not uses_gtt(settings):
        return []
    problems = []
    ceiling = gtt_ceiling_gib(spec.memory_gib, system_reserve_gib)
    auto = settings.gtt_gib == "auto"
    gtt = gtt_gib(settings, spec.memory_gib, system_reserve_gib)
    if not auto and gtt > ceiling:
        problems.append(
            Problem(
                spec.name,
                "model_server_gtt_gib",
                f"{gtt} GiB is more than this host's {spec.memory_gib:g} GiB RAM (hw_memory_gib) - "
                f"{system_reserve_gib:g} GiB for the system (base_system_reserve_gib) = {ceiling} GiB",
            )
        )
    # The GTT holds the model and the KV cache; the prompt cache and the checkpoints live in the RAM outside it.
    key, kv_gib, kv_detail = kv_only(settings)
    if gtt_need_gib(settings) > gtt:
        how = (
            f"auto: at most {spec.memory_gib:g} GiB RAM - {system_reserve_gib:g} GiB reserve"
            if auto
            else "model_server_gtt_gib"
        )
        problems.append(
            Problem(
                spec.name,
                "model_server_model_size_gib" if auto else "model_server_gtt_gib",
                f"the {settings.model_size_gib:g} GiB model and its KV cache ({kv_detail}: {kv_gib:.1f} GiB) need "
                f"{gtt_need_gib(settings):.1f} GiB of GTT, more than this host's {gtt} GiB ({how}): a bigger GTT, "
                f"a smaller model, or fewer slots or a shorter context ({key})",
            )
        )
    return problems


def gtt_modprobe_line(gib: int) -> str:
    """ttm's options for a GTT of ``gib`` GiB: the pages the GPU may map, and the pool kept for it, alike."""
    pages = gib * PAGES_PER_GIB
    return f"options ttm pages_limit={pages} page_pool_size={pages}"


def apt_components(settings: ModelServerSettings) -> tuple[str, ...]:
    """Debian components the host's GPU needs beyond main (its firmware), for the base role's apt sources."""
    return DRIVER_APT_COMPONENTS[settings.vulkan_driver] if settings.compute == VULKAN else ()


def preflight(settings: ModelServerSettings, spec: HostSpec) -> list[Problem]:
    problems = []
    for key in ("model_source", "model_sha256"):
        if not getattr(settings, key):
            problems.append(Problem(spec.name, f"model_server_{key}", "required on the backend"))
    if settings.model_source and not model_file_name(settings.model_source).endswith(".gguf"):
        problems.append(Problem(spec.name, "model_server_model_source", "must name a .gguf file"))
    if settings.ubatch_tokens > settings.batch_tokens:
        problems.append(
            Problem(
                spec.name,
                "model_server_ubatch_tokens",
                f"must not exceed model_server_batch_tokens ({settings.batch_tokens})",
            )
        )
    if settings.compute == VULKAN and settings.engine == LLAMA_CPP_PYTHON:
        problems.append(
            Problem(
                spec.name,
                "model_server_compute",
                f"vulkan is built into llama-server only (and proved from its log); this host's model_server_engine "
                f"is {LLAMA_CPP_PYTHON}",
            )
        )
    if settings.compute == VULKAN and spec.debian < 13:
        # Debian 12's Vulkan headers and glslc are older than the pinned source needs, and its kernel, Mesa and
        # firmware predate the reference GPU: refused here, before any host is touched, not after a failed build.
        problems.append(
            Problem(
                spec.name,
                "model_server_compute",
                f"vulkan needs Debian 13 (its Vulkan headers, glslc, Mesa and kernel); hw_debian is {spec.debian}",
            )
        )
    if "-DGGML_VULKAN=ON" in settings.cmake_args.split():
        problems.append(
            Problem(
                spec.name,
                "model_server_cmake_args",
                "use model_server_compute = 'vulkan', not -DGGML_VULKAN=ON: it also brings the build and runtime "
                "packages, the unit's access to the GPU and the check that every layer runs on it",
            )
        )
    if settings.max_answer_tokens >= settings.context_tokens:
        problems.append(
            Problem(
                spec.name, "model_server_max_answer_tokens", f"must be below the context ({settings.context_tokens})"
            )
        )
    return problems


PREFLIGHT = Preflight("model_server", ("backend",), preflight)
