"""What the model evaluates per chat through the gateway, in the model's own tokens as the gateway reports them
(the model server's usage: the prompt, and the part of it served from its cache). On the reference box every
evaluated token costs ~1.9 ms before the first word (BENCHMARKS.md, First token), so these are its latency too.

One conversation per session (a fresh session key each run): its first chat shows the whole prompt the agent
profile costs, its later turns what a warm chat re-evaluates.
"""

from __future__ import annotations

import uuid

import pytest

from roles.gateway.config import PROMPT_TOKEN_BUDGETS, WARM_TAIL_TOKENS
from tests.support.chats import MESSAGE_TOKENS, evaluated, path_targets, run_session

TURNS = 4


@pytest.fixture(scope="module")
def conversation(site, frontend, frontend_host) -> list[dict]:
    target = path_targets(site, frontend)["gateway"]
    turns = run_session(frontend_host, target, f"clawlan-check-{uuid.uuid4().hex[:12]}", TURNS)
    failed = [turn for turn in turns if "error" in turn]
    assert not failed and len(turns) == TURNS, f"the conversation's chats failed: {failed}"
    missing = [turn for turn in turns if turn["prompt_tokens"] is None or turn["completion_tokens"] is None]
    assert not missing, f"the gateway reported no usage for {missing}: the model server's counts are unknown"
    return turns


def test_the_agent_prompt_fits_its_profile_budget(conversation, site, frontend):
    profile = site.gateway_config(frontend).agent_tools
    prompt = conversation[0]["prompt_tokens"]
    assert prompt <= PROMPT_TOKEN_BUDGETS[profile], (
        f"a new session's first chat is a {prompt}-token prompt, over the {PROMPT_TOKEN_BUDGETS[profile]} the"
        f" '{profile}' profile may cost"
    )


def test_a_new_session_takes_the_shared_prompt_from_the_cache(conversation):
    """The system prompt is the same for every session: only the session's own lines are evaluated."""
    first = conversation[0]
    assert evaluated(first) * 4 < first["prompt_tokens"], (
        f"a new session's first chat evaluated {evaluated(first)} of its {first['prompt_tokens']} prompt tokens:"
        " the shared system prompt did not come from the cache"
    )


def test_a_warm_chat_evaluates_only_its_new_turn(conversation):
    """Turns 2 on evaluate the previous answer, the new message and at most WARM_TAIL_TOKENS of framing."""
    tails = [
        evaluated(turn) - previous["completion_tokens"] - MESSAGE_TOKENS
        for previous, turn in zip(conversation, conversation[1:], strict=False)
    ]
    assert max(tails) <= WARM_TAIL_TOKENS, (
        f"warm chats re-evaluated {tails} tokens beyond their message and the previous answer"
        f" (at most {WARM_TAIL_TOKENS}); the turns: {conversation}"
    )
