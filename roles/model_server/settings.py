"""Settings of the model_server role that other roles' rules depend on: inventory keys ``model_server_*``."""

from __future__ import annotations

from dataclasses import dataclass

from roles.settings import between, setting


@dataclass(frozen=True)
class ModelServerSettings:
    model_size_gib: float = setting(
        45.0,
        "Size of the model file; Qwen3-Next-80B-A3B Q4_K_M is about 45 GiB. Sizes the memory budget.",
        between(0, 4096),
    )
