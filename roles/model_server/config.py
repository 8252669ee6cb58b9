"""What the model_server role deploys on the backend, resolved from settings and the host's hardware."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from roles.common.locks import Lock
from roles.common.names import HostSpec
from roles.common.settings import Problem
from roles.common.values import file_name
from roles.model_server.settings import ModelServerSettings

VENV = "/opt/clawlan/llama-cpp"
MODELS_DIR = "/var/lib/clawlan/models"
CONFIG_FILE = "/etc/clawlan/model-server.conf"
SECRETS_FILE = "/etc/clawlan/model-server.env"
UNIT = "clawlan-model-server.service"
USER = "llm"


@dataclass(frozen=True)
class ModelServerConfig:
    version: str
    cmake_args: str
    build_packages: tuple[str, ...]
    wheelhouse_dir: str  # on the control machine
    model_source: str
    model_sha256: str
    model_path: str
    model_size_gib: float
    model_alias: str
    context_tokens: int
    max_answer_tokens: int
    threads: int
    batch_tokens: int
    ubatch_tokens: int
    gpu_layers: int
    mlock: bool
    chat_format: str
    prompt_cache_mib: int
    port: int
    api_key_file: str  # on the control machine
    lock: Lock  # llama-cpp-python and its dependencies, by version and hash

    def environment(self) -> dict[str, str]:
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
    settings: ModelServerSettings, spec: HostSpec, wheelhouse_dir: str, api_key_file: str, lock: Lock
) -> ModelServerConfig:
    return ModelServerConfig(
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
        max_answer_tokens=settings.max_answer_tokens,
        threads=spec.cpu_cores if settings.threads == "auto" else settings.threads,
        batch_tokens=settings.batch_tokens,
        ubatch_tokens=settings.ubatch_tokens,
        gpu_layers=settings.gpu_layers,
        mlock=settings.mlock,
        chat_format=settings.chat_format,
        prompt_cache_mib=settings.prompt_cache_mib,
        port=settings.port,
        api_key_file=api_key_file,
        lock=lock,
    )


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
    if settings.max_answer_tokens >= settings.context_tokens:
        problems.append(
            Problem(
                spec.name, "model_server_max_answer_tokens", f"must be below the context ({settings.context_tokens})"
            )
        )
    return problems
