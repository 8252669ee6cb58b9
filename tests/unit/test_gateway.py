"""The gateway's configuration: rendered from the inventory, the model figures taken from the backend."""

from __future__ import annotations

import json

import pytest

from roles.common.names import HostSpec
from roles.common.settings import InventoryError
from roles.common.templates import render
from roles.gateway.config import preflight
from roles.gateway.settings import GatewaySettings, node_version_problem
from tests.support.sites import site_with


def openclaw(front=None, back=None) -> dict:
    return json.loads(site_with(front, back).gateway_config("front").openclaw_json())


def test_the_model_is_the_backends_through_the_local_egress_proxy():
    config = openclaw(
        front={"mtls_egress_port": 18181},
        back={"model_server_model_alias": "qwen", "model_server_context_tokens": 65536,
              "model_server_max_answer_tokens": 2048},
    )  # fmt: skip
    provider = config["models"]["providers"]["clawlan"]
    assert provider["baseUrl"] == "http://127.0.0.1:18181/v1"
    assert provider["api"] == "openai-completions"
    (model,) = provider["models"]
    assert (model["id"], model["contextWindow"], model["maxTokens"]) == ("qwen", 65536, 2048)
    assert config["agents"]["defaults"]["model"]["primary"] == "clawlan/qwen"
    assert config["models"]["mode"] == "replace"  # no built-in (cloud) provider remains


def test_secrets_are_references_never_values():
    site = site_with()
    text = site.gateway_config("front").openclaw_json()
    assert '"apiKey": "${CLAWLAN_MODEL_API_KEY}"' in text
    assert "token" not in json.loads(text)["gateway"]["auth"]  # OPENCLAW_GATEWAY_TOKEN, from the EnvironmentFile


def test_binds_the_lan_address_with_token_auth_and_the_chat_endpoint():
    gateway = openclaw(front={"gateway_port": 8080})["gateway"]
    assert (gateway["bind"], gateway["customBindHost"], gateway["port"]) == ("custom", "10.0.0.10", 8080)
    assert gateway["auth"]["mode"] == "token"
    assert gateway["http"]["endpoints"]["chatCompletions"]["enabled"] is True
    assert "https://chat.home.arpa:8080" in gateway["controlUi"]["allowedOrigins"]
    assert "https://10.0.0.10:8080" in gateway["controlUi"]["allowedOrigins"]
    # HTTPS only, with the gateway's own key and the site CA's certificate, never one OpenClaw makes up.
    assert gateway["tls"] == {"enabled": True, "autoGenerate": False, "certPath": "/etc/clawlan/pki/gateway.crt",
                              "keyPath": "/etc/clawlan/pki/gateway.key"}  # fmt: skip


def test_nothing_calls_outside_the_lan():
    config = openclaw()
    assert config["update"]["checkOnStart"] is False
    assert config["models"]["catalogRefresh"]["enabled"] is False
    assert config["discovery"]["mdns"]["mode"] == "off"
    assert config["agents"]["defaults"]["heartbeat"]["every"] == "0m"
    assert config["plugins"]["entries"]["memory-core"]["config"]["dreaming"]["enabled"] is False


@pytest.mark.parametrize("tools", [False, True])
def test_tools_setting_picks_the_llama_cpp_compatibility(tools):
    (model,) = openclaw(front={"gateway_model_tools": tools})["models"]["providers"]["clawlan"]["models"]
    assert model["compat"]["requiresStringContent"] is True
    assert model["compat"]["maxTokensField"] == "max_tokens"
    if tools:
        assert model["compat"]["toolSchemaProfile"] == "llamacpp" and "supportsTools" not in model["compat"]
    else:
        assert model["compat"]["supportsTools"] is False


def unit(front=None) -> str:
    from roles.gateway.deploy import _unit_context

    return render("gateway/clawlan-gateway.service.j2", **_unit_context(site_with(front).gateway_config("front")))


def test_unit_runs_the_pinned_versions_as_the_gateway_user():
    older = {"gateway_node_version": "24.16.0", "gateway_openclaw_version": "2026.9.5"}  # both locked in locks/
    config = site_with(older).gateway_config("front")
    node = f"/opt/clawlan/node/24.16.0-{config.node_lock.digest}/bin/node"
    openclaw = f"/opt/clawlan/openclaw/2026.9.5-{config.openclaw_lock.digest}/node_modules/openclaw/openclaw.mjs"
    text = unit(older)
    assert f"ExecStart={node} {openclaw} gateway run" in text
    assert "User=openclaw" in text
    assert "Restart=always" in text
    assert "EnvironmentFile=/etc/clawlan/gateway.env" in text
    assert f"ExecStartPost={node} /opt/clawlan/bin/await-gateway-ready.mjs https://10.0.0.10:18789/readyz" in text


def test_a_version_without_a_lock_is_refused_before_any_host_is_contacted():
    with pytest.raises(InventoryError) as refused:
        site_with({"gateway_openclaw_version": "2026.10.2"})
    assert "host 'front', key 'gateway_openclaw_version': no lock for openclaw 2026.10.2" in str(refused.value)
    assert "make locks LOCK=openclaw==2026.10.2" in str(refused.value)


def test_unit_and_cli_share_a_compile_cache_the_gateway_user_owns():
    from roles.gateway.deploy import _unit_context

    context = _unit_context(site_with().gateway_config("front"))
    text = unit()
    # systemd makes /var/cache/openclaw for User= and lets the sandbox write it; the CLI wrapper sets the same
    # variable, so `openclaw security audit` (the compliance suite's) finds the service's compiled code.
    assert "CacheDirectory=openclaw" in text and "CacheDirectoryMode=0700" in text
    assert "Environment=NODE_COMPILE_CACHE=/var/cache/openclaw" in text
    assert "NODE_COMPILE_CACHE=/var/cache/openclaw" in render("gateway/openclaw.sh.j2", **context)


def test_unit_reaches_loopback_and_the_lan_only():
    text = unit({"gateway_client_networks": ["10.0.0.0/24"]})
    assert "IPAddressDeny=any" in text
    assert "IPAddressAllow=localhost 10.0.0.0/24" in text


def test_no_secret_in_the_unit_or_the_cli_wrapper(tmp_path):
    from roles.gateway.deploy import _unit_context

    config = site_with().gateway_config("front")
    for template in ("gateway/clawlan-gateway.service.j2", "gateway/openclaw.sh.j2"):
        text = render(template, **_unit_context(config))
        assert "TOKEN=" not in text and "API_KEY=" not in text


@pytest.mark.parametrize(
    "version, supported",
    [("24.16.0", True), ("24.19.0", True), ("24.15.9", False), ("25.2.0", False), ("26.0.0", False),
     ("26.1.0", True), ("27.0.0", True), ("22.11.0", False), ("v24.19.0", False)],
)  # fmt: skip
def test_node_versions_openclaw_supports(version, supported):
    assert (node_version_problem(version) is None) is supported


def test_preflight_requires_the_frontend_inside_its_client_networks():
    settings = GatewaySettings(client_networks=("192.168.1.0/24",))
    assert preflight(settings, HostSpec("front", "192.168.1.10", "frontend", 16, 4)) == []
    (problem,) = preflight(settings, HostSpec("front", "10.0.0.10", "frontend", 16, 4))
    assert problem.key == "gateway_client_networks" and "10.0.0.10" in problem.message


@pytest.mark.parametrize(
    "older, newer",
    [("2026.9.5", "2026.9.6"), ("2026.9.6", "2026.10.1"), ("2026.9.1-beta.1", "2026.9.2"), ("2025.12.30", "2026.1.1")],
)
def test_openclaw_versions_compare_as_numbers(older, newer):
    from roles.gateway.operations import version_key

    assert version_key(older) < version_key(newer)


def test_by_default_the_agent_only_answers():
    """No tool, no exec, no web, no browser, no Tool Search (which would offer tool_call beside an empty list)."""
    tools = openclaw()["tools"]
    assert tools["profile"] == "minimal" and tools["toolSearch"] is False and tools["codeMode"] is False
    assert {"gateway", "group:runtime", "group:fs", "group:automation", "group:nodes", "group:web"} <= set(
        tools["deny"]
    )
    assert tools["exec"] == {"mode": "deny"} and tools["elevated"] == {"enabled": False}
    assert openclaw()["browser"] == {"enabled": False}


def test_the_workspace_profile_adds_file_tools_confined_to_the_workspace():
    tools = openclaw(front={"gateway_agent_tools": "workspace"})["tools"]
    assert tools["alsoAllow"] == ["group:fs"] and tools["fs"] == {"workspaceOnly": True}
    assert "group:runtime" in tools["deny"] and "group:fs" not in tools["deny"]


def test_the_operator_profile_is_openclaws_own_default():
    config = openclaw(front={"gateway_agent_tools": "operator"})
    assert config["tools"] == {"profile": "full"} and "browser" not in config
    assert set(config["agents"]["defaults"]) == {"model", "heartbeat", "maxConcurrent"}
    assert "slots" not in config["plugins"]


@pytest.mark.parametrize("profile", ["chat", "workspace"])
def test_the_lean_profiles_leave_skills_bootstrap_files_and_memory_out_of_the_prompt(profile):
    """~12,300 tokens of OpenClaw's default prompt down to ~2,000 (chat) or ~3,000 (workspace): docs/roles.md, role
    gateway."""
    config = openclaw(front={"gateway_agent_tools": profile})
    defaults = config["agents"]["defaults"]
    assert defaults["skills"] == [] and defaults["skipBootstrap"] is True and defaults["contextInjection"] == "never"
    assert config["plugins"]["slots"] == {"memory": "none"}


def test_every_upstream_request_names_its_session_for_the_balancer():
    (model,) = openclaw()["models"]["providers"]["clawlan"]["models"]
    assert model["compat"]["sendSessionAffinityHeaders"] is True


@pytest.mark.parametrize("value", ["full", "none", "", True, ["chat"], "chat; id"])
def test_an_unknown_agent_profile_is_refused_naming_host_and_key(value):
    with pytest.raises(InventoryError) as error:
        site_with(front={"gateway_agent_tools": value})
    assert "front" in str(error.value) and "gateway_agent_tools" in str(error.value)


def test_conversations_are_kept_a_bounded_time():
    assert openclaw()["session"]["maintenance"] == {
        "mode": "enforce",
        "pruneAfter": "30d",
        "resetArchiveRetention": "30d",
    }
    shorter = openclaw(front={"gateway_session_retention_days": 7})["session"]["maintenance"]
    assert shorter["pruneAfter"] == shorter["resetArchiveRetention"] == "7d"


def test_agent_runs_at_once_default_to_twice_the_sites_backend_slots():
    """Every slot busy and as many chats waiting at the balancer with their prompt made: OpenClaw's own default
    of 4 would hold the fifth person's chat back on a site with more slots than that."""
    assert openclaw()["agents"]["defaults"]["maxConcurrent"] == 2 * 4
    assert openclaw(back={"model_server_parallel_slots": 6})["agents"]["defaults"]["maxConcurrent"] == 12
    assert openclaw(front={"gateway_concurrent_chats": 3})["agents"]["defaults"]["maxConcurrent"] == 3
