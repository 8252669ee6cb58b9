"""How fast a backend must at least decode, per device class: the one table of decode floors, each with its source.

A site's ``latency_tokens_per_second`` (and through it the probe's alert floor) defaults to the slowest class among its
backends (roles/site/site.py); an inventory value wins. The "Decode floors" table in docs/operating.md is made from
this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from roles.model_server.settings import CPU, LAVAPIPE, RADV, VULKAN, ModelServerSettings


@dataclass(frozen=True)
class DecodeFloor:
    """A class's floor in tokens/s, the figure it is taken from and why that far below; ``None`` where no figure
    speaks for the model a site of that class serves."""

    tokens_per_second: float | None
    from_tokens_per_second: float | None
    source: str

    @property
    def margin_percent(self) -> int | None:
        """How far below its figure the floor sits."""
        if self.tokens_per_second is None or not self.from_tokens_per_second:
            return None
        return round(100 * (1 - self.tokens_per_second / self.from_tokens_per_second))


def _vulkan(driver: str) -> str:
    return f"{VULKAN} ({driver})"


# The device classes: where a backend's model server decodes (model_server_compute, model_server_vulkan_driver).
RADV_CLASS, LAVAPIPE_CLASS, CPU_CLASS = _vulkan(RADV), _vulkan(LAVAPIPE), CPU


def device_class(model: ModelServerSettings) -> str:
    """The device a backend's model server decodes on: one of the classes above."""
    return CPU_CLASS if model.compute == CPU else _vulkan(model.vulkan_driver)


DECODE_FLOORS: dict[str, DecodeFloor] = {
    RADV_CLASS: DecodeFloor(
        25.0,
        42.7,
        "Projection from published figures for the reference box (Ryzen AI Max+ 395, Radeon 8060S; llama.cpp on "
        "Vulkan RADV, kernel 6.18.9, Feb 2026), not measured by clawlan: tg128 42.7 tokens/s for Qwen3-Next-80B-A3B's "
        "architecture at Q4_K_M. The checked chats decode behind a long prompt, at depth, beside other slots (Q8 goes "
        "from tg128 36.3 to 31.7 at 32k depth); a CPU fallback or a partial offload is several times slower.",
    ),
    LAVAPIPE_CLASS: DecodeFloor(
        40.0,
        60.0,
        "The lab's own measurement (lavapipe serves the lab only). Set on the lab's first tiny model: ~150 tokens/s "
        "on the server, and make check's gateway path (two shared cores) measured medians of 58.5 and 65.6 tokens/s. "
        "The qwen3next lab model decodes ~150 tokens/s on the server too, 136 through the gateway (one run of the "
        "latency suite): the floor stays a third below the lower gateway figure, for the probe, Prometheus and the "
        "other tests beside the suite (BENCHMARKS.md).",
    ),
    CPU_CLASS: DecodeFloor(
        None,
        None,
        "Unpublished: no figure for a real model on the reference box's CPU (the lab's tiny model, ~500 tokens/s on "
        "one thread, says nothing of it). No floor (0, the check off) unless the inventory sets "
        "latency_tokens_per_second.",
    ),
}


def decode_floor(backends: list[ModelServerSettings] | tuple[ModelServerSettings, ...]) -> float:
    """The floor of the slowest class among ``backends`` (the latency targets are site-wide); 0 (no floor) where a
    class has no figure: it might be the slowest."""
    floors = [DECODE_FLOORS[device_class(model)].tokens_per_second for model in backends]
    return 0.0 if not floors or None in floors else min(f for f in floors if f is not None)


@dataclass(frozen=True)
class PromptRate:
    """How fast a class evaluates a long prompt, in tokens/s, and where the figure comes from; ``None`` where no
    figure speaks for a real model on that class."""

    tokens_per_second: float | None
    source: str


# The slowest prompt evaluation a class shows at the depth a full context reaches: what the site's timeouts are
# derived from (the worst cold prompt a chat can send, roles/inventory/rules.py).
PROMPT_RATES: dict[str, PromptRate] = {
    RADV_CLASS: PromptRate(
        454.0,
        "Published, not measured by clawlan: Qwen3-Next-80B-A3B on the reference box (Vulkan RADV), pp2048 at 32k "
        "depth 454 tokens/s (Q8; 588 at depth 0, Q4_K_M's pp512 531).",
    ),
    LAVAPIPE_CLASS: PromptRate(
        443.0,
        "The lab's own measurement: the qwen3next lab model on Mesa's CPU driver, one thread, evaluated a 24,906-token "
        "prompt through the gateway at 443 tokens/s (~580 for 2k tokens; BENCHMARKS.md, First token).",
    ),
    CPU_CLASS: PromptRate(None, "Unpublished for a real model on the reference box's CPU: no timeout is derived."),
}


def worst_cold_prompt_s(model: ModelServerSettings) -> float | None:
    """Seconds a backend needs, at least, for a prompt filling a slot's context, none of it cached."""
    rate = PROMPT_RATES[device_class(model)].tokens_per_second
    return None if rate is None else model.context_tokens / rate


def worst_chat_s(model: ModelServerSettings) -> float | None:
    """That prompt and the longest answer after it, at the class's decode floor."""
    prompt, floor = worst_cold_prompt_s(model), DECODE_FLOORS[device_class(model)].tokens_per_second
    return None if prompt is None or floor is None else prompt + model.max_answer_tokens / floor
