"""The checks that take minutes (run with --deep, as `make check-deep` does): what the model server's prompt cache
answers, and the longest chat OpenClaw passes on whole.

Both load the model for a while, so they come after the measured chats and only when asked for: after a change of
the model server's cache settings, a llama.cpp upgrade or a new model, and in the e2e suite on every run.
"""

from __future__ import annotations

import uuid

import pytest

from roles.gateway.config import PROMPT_TOKEN_BUDGETS
from roles.model_server.config import LLAMA_SERVER
from tests.support.chats import cache_check, path_targets, run_long_chat
from tests.support.remote import chats_in_flight
from tests.support.waiting import seconds_until

pytestmark = pytest.mark.deep

# cache_check.py's scenarios and how many chats each compares with a fresh evaluation.
CACHE_SCENARIOS = {"dropped-turn": 2, "isolation": 24}
# Of a slot's context, what the long chat's prompt fills at most: the agent profile's prompt at its budget and the
# chat's words, one of Qwen's tokens each. OpenClaw answers a prompt in full, without compacting the conversation
# first, while its estimate (three characters a token) leaves room for the answer: ~75 % of the context.
LONG_CHAT_SHARE = 0.70


@pytest.fixture(params=["dropped-turn", "isolation"])
def scenario(request) -> str:
    return request.param


def test_the_prompt_cache_changes_no_answer(site, backend_hosts, scenario):
    """Every chat the model server answers from its cache (context checkpoints, idle slots saved to and restored
    from host memory) is the fresh evaluation's answer, token for token and log-probability for log-probability:
    a conversation with its first exchange dropped, and six sessions, each with its own secret, four rounds all at
    once on more sessions than slots. A cache that handed one session another's state would answer differently."""
    configs = {name: site.model_server_config(name) for name in backend_hosts}
    caching = sorted(name for name, config in configs.items() if config.engine == LLAMA_SERVER)
    if not caching:
        pytest.skip("n/a: no backend runs llama-server; llama-cpp-python keeps no prompt cache between requests")
    for name in caching:
        verdict = cache_check(backend_hosts[name], configs[name].port, configs[name].key_file, scenario)
        assert verdict == {"compared": CACHE_SCENARIOS[scenario], "differing": []}, f"{name}, {scenario}: {verdict}"


def test_a_prompt_near_the_context_limit_is_answered_through_the_gateway(site, frontend, frontend_host):
    """The longest chat OpenClaw sends on as it is, evaluated cold for a minute or more before its first token, is
    answered in full: nothing on the way (gateway, balancer, ingress) times out meanwhile (docs/roles.md, role mtls:
    timeouts, derived from a whole context at the backend's rate)."""
    context = min(site.model_server_config(h.name).context_tokens for h in site.topology.hosts if h.role == "backend")
    gateway = site.gateway_config(frontend)
    words = int(context * LONG_CHAT_SHARE - PROMPT_TOKEN_BUDGETS[gateway.agent_tools])
    target = {**path_targets(site, frontend)["gateway"], "timeout_s": gateway.request_timeout_s + 30}
    record = run_long_chat(frontend_host, target, f"clawlan-check-long-{uuid.uuid4().hex[:12]}", max(words, 1))
    assert "error" not in record, f"a {words}-word chat ('{gateway.agent_tools}' profile) failed: {record}"
    print(
        f"long prompt: {record['prompt_tokens']} tokens ({record['cached_tokens'] or 0} cached) answered with"
        f" {record['completion_tokens']} tokens in {record['duration_s']:.1f} s"
    )
    assert record["prompt_tokens"] >= 0.6 * context, f"the prompt was not near the context of {context}: {record}"
    # Whole: the model stopped by itself, or at the answer's limit the chat asked for. OpenClaw cuts the answer of a
    # prompt it estimates too long to one token ("Reply truncated"), also with finish reason "length".
    whole = record["finish_reason"] == "stop" or record["completion_tokens"] >= target["max_tokens"]
    assert whole, f"the answer was cut short: {record}"
    # Should the gateway go on to compact the conversation (a prompt past its threshold does, another near-context
    # evaluation upstream for a minute or more), the check waits for it: it leaves the site with nothing of its own
    # in flight.
    settled = seconds_until(
        lambda: chats_in_flight(frontend_host, site.egress_config(frontend)) == 0,
        gateway.request_timeout_s,
        "the gateway's follow-up of the long chat finished",
    )
    print(f"nothing in flight {settled:.1f} s after the answer")
