"""The latency suite: streamed chats through both paths of a running site, held to the inventory's targets.

    pytest tests/latency [--inventory inventory/site.py] [--chats 20] [--concurrency 1] [--deep]

It needs a deployed, running site and never deploys one, so plain ``pytest`` leaves this directory out
(``--ignore=tests/latency`` in pyproject.toml's addopts); naming it on the command line, as tools/check.py and the
e2e suite do, collects it all the same, since pytest never ignores a path it was given.

Both paths start on the first frontend, where the probe runs: "gateway" is OpenClaw on the frontend's LAN address,
"backend" the backend's mutual TLS listener with the probe's certificate. Five warm-up chats per path, not counted
(the targets describe a warm site, not the first chat after a restart), then per path --chats chats, --concurrency
at a time. llama-cpp-python serves one chat at a time: above 1, chats queue and their TTFT includes the wait, and
the suite shows that queued streams are neither dropped nor cut short.

--deep adds the checks that take minutes and load the model for them (test_deep.py: the prompt cache's answers
against fresh evaluations, a prompt near the context limit through the gateway; test_at_once.py: people chatting at
once); without it they are deselected.
They run last, after the measured chats, so their load is in no figure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from roles.inventory.load import load_inventory, site_from_inventory
from tests.support.chats import path_targets, run_chats
from tests.support.hosts import remote_host
from tests.support.stats import headroom, missed, summarize

REPO = Path(__file__).resolve().parents[2]
PATHS = ("gateway", "backend")
SUMMARIES = pytest.StashKey[dict[str, dict[str, Any]]]()  # path -> summary, for the table at the end
REMEASURED = pytest.StashKey[dict[str, tuple[list[str], dict[str, Any]]]]()  # path -> (missed, first summary)
TARGETS = pytest.StashKey[Any]()  # the site's LatencyTargets, which the tests hold the paths to
SITE = pytest.StashKey[Any]()  # the inventory's Site, loaded once, when the session's tests are known
INVENTORY = pytest.StashKey[Any]()  # the pyinfra Inventory the Site came from: the hosts' connection details
FRONTEND = pytest.StashKey[str]()  # the first frontend's name: where both paths' chats start
WARMED_UP = pytest.StashKey[Future]()  # the frontend's connection, once the warm-up chats are done
# Per path. A freshly started OpenClaw stalls now and then for its first minute (JIT, start-up garbage): over ~34 lab
# runs, 4 of the 7 gateway inter-token p99s over 40 ms came right after a deploy restarted it, as did one CI failure.
# The warm-up runs while the compliance controls do, so these cost the check no time.
WARM_UP_CHATS = 5


@dataclass(frozen=True)
class Measured:
    """One path's chats, measured once per session and shared by every test of that path."""

    path: str
    target: dict[str, Any]
    chats: list[dict[str, Any]]
    expected_tokens: int
    summary: dict[str, Any]


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def pytest_addoption(parser):
    # The compliance suite's conftest adds the same --inventory; in a run of both, the first one loaded wins.
    with contextlib.suppress(ValueError):
        parser.addoption(
            "--inventory",
            default=os.environ.get("CLAWLAN_INVENTORY", "inventory/lab.py"),
            help="the pyinfra inventory file of the site to check (default: the lab)",
        )
    parser.addoption("--chats", type=_positive, default=20, help="latency suite: chats per path (default 20)")
    parser.addoption(
        "--concurrency", type=_positive, default=1, help="latency suite: chats in flight at once (default 1)"
    )
    parser.addoption(
        "--deep",
        action="store_true",
        help="latency suite: also the checks that take minutes (the prompt cache's answers, the longest prompt, "
        "people at once)",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "latency: the latency suite, against a running site (tests/latency)")
    config.addinivalue_line("markers", "deep: a latency-suite check that takes minutes; run only with --deep")
    config.stash[SUMMARIES] = {}
    config.stash[REMEASURED] = {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Marks the suite's tests, and runs them after everything else in the session: in one run with the
    compliance suite (tools/check.py), openclaw's security audit loads the frontend until its last controls,
    and that load must not show in the figures. The deep checks come last of all, or without --deep not at all."""
    latency = [item for item in items if "/tests/latency/" in str(item.path)]
    for item in latency:
        item.add_marker(pytest.mark.latency)
    deep = [item for item in latency if item.get_closest_marker("deep")]
    if deep and not config.getoption("--deep"):
        config.hook.pytest_deselected(items=deep)
        deep = []
    latency = [item for item in latency if not item.get_closest_marker("deep")]
    items[:] = [item for item in items if "/tests/latency/" not in str(item.path)] + latency + deep


def _load_inventory(config):
    path = (REPO / config.getoption("--inventory")).resolve()
    if not path.is_file():  # pyinfra would take a missing file for a host name
        raise pytest.UsageError(f"no inventory file {path}")
    return load_inventory(str(path), cwd=str(REPO))


def _warm_up(host, targets: dict[str, dict[str, Any]], chats: int):
    """Unmeasured chats per path: the targets describe a warm site, not the first chats after a restart (prompt
    cache, TLS session, OpenClaw's first agent runs). The backend's first, so the gateway's prompt is the model's
    live context when the measured chats begin, as it is between a user's chats."""
    for path in reversed(PATHS):
        run_chats(host, targets[path], count=chats)
    return host


def pytest_collection_finish(session):
    """The warm-up starts as soon as the tests are known, on its own connection: in one run with the compliance
    suite (tools/check.py) it happens while the controls run, and being unmeasured, their load does not matter.
    The inventory is loaded here, on this thread: pyinfra's loading is not safe beside another thread's."""
    config = session.config
    if config.option.collectonly or not any("/tests/latency/" in str(item.path) for item in session.items):
        return
    inventory = config.stash[INVENTORY] = _load_inventory(config)
    site = config.stash[SITE] = site_from_inventory(inventory)
    frontend = config.stash[FRONTEND] = next(h.name for h in site.topology.hosts if h.role == "frontend")
    host = remote_host(next(h for h in inventory if h.name == frontend))
    pool = ThreadPoolExecutor(max_workers=1)
    config.stash[WARMED_UP] = pool.submit(_warm_up, host, path_targets(site, frontend), WARM_UP_CHATS)
    pool.shutdown(wait=False)


@pytest.fixture(scope="session")
def site(request):
    return request.config.stash[SITE]


@pytest.fixture(scope="session")
def frontend(request) -> str:
    return request.config.stash[FRONTEND]


@pytest.fixture(scope="session")
def backend_hosts(request, site) -> dict[str, Any]:
    """Every backend's connection, by name."""
    backends = {h.name for h in site.topology.hosts if h.role == "backend"}
    return {h.name: remote_host(h) for h in request.config.stash[INVENTORY] if h.name in backends}


@pytest.fixture(scope="session")
def frontend_host(request):
    """The warm-up's connection to the first frontend, once its chats are done (a failed warm-up fails here)."""
    return request.config.stash[WARMED_UP].result()


def expected_tokens(path: str, target: dict[str, Any]) -> int:
    """Content chunks a whole answer streams on ``path``; fewer means the stream was cut short.

    The backend is llama-cpp-python: one token per chunk, and the probe's counting prompt outlasts max_tokens
    (the lab's model never stops at all), so a whole answer is max_tokens chunks; a chat interrupted by the next
    one (INTERRUPT_REQUESTS) ends with [DONE] but fewer. The gateway runs an agent with its own answer limit and
    chunking, so there a whole answer is one that streamed: at least two chunks, one gap between them. A stream
    without [DONE] or without any content fails in stream_chat and counts as an error instead.
    """
    return target["max_tokens"] if path == "backend" else 2


@pytest.fixture(scope="session", params=PATHS)
def measured(request, site, frontend, frontend_host) -> Measured:
    """A path's chats. A path whose figures miss target and margin is measured once more, and that second set is
    the verdict: a stall on a shared core fails no check, a path that is slow fails twice. Failed or cut-short
    chats are never measured away."""
    path = request.param
    target = path_targets(site, frontend)[path]
    expected = expected_tokens(path, target)
    count, concurrency = request.config.getoption("--chats"), request.config.getoption("--concurrency")
    chats = run_chats(frontend_host, target, count=count, concurrency=concurrency)
    summary = summarize(chats, expected_tokens=expected)
    if (missing := missed(summary, site.latency)) and not (summary["errors"] or summary["short"]):
        request.config.stash[REMEASURED][path] = (missing, summary)
        chats = run_chats(frontend_host, target, count=count, concurrency=concurrency)
        summary = summarize(chats, expected_tokens=expected)
    request.config.stash[SUMMARIES][path] = summary
    request.config.stash[TARGETS] = site.latency
    return Measured(path=path, target=target, chats=chats, expected_tokens=expected, summary=summary)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def pytest_terminal_summary(terminalreporter, config):
    summaries = config.stash.get(SUMMARIES, {})
    if not summaries:
        return
    write = terminalreporter.write_line
    terminalreporter.section("latency")
    write(f"concurrency {config.getoption('--concurrency')}; times in ms")
    header = ("path", "chats", "errors", "short", "TTFT p50", "TTFT p99", "ITL p50", "ITL p99", "tokens/s median")
    rows = [header]
    for path, s in summaries.items():
        rate = s["tokens_per_second_median"]
        rows.append(
            (
                path,
                str(s["count"]),
                str(s["errors"]),
                str(s["short"]),
                _ms(s["ttft_p50_s"]),
                _ms(s["ttft_p99_s"]),
                _ms(s["inter_token_p50_s"]),
                _ms(s["inter_token_p99_s"]),
                "-" if rate is None else f"{rate:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        path, *figures = row
        write("  ".join([path.ljust(widths[0]), *(f.rjust(w) for f, w in zip(figures, widths[1:], strict=True))]))
    targets = config.stash.get(TARGETS, None)
    if targets is None:
        return
    write(
        f"targets: TTFT p99 <= {_ms(targets.ttft_p99_s)}, ITL p99 <= {_ms(targets.inter_token_p99_s)}"
        f", tokens/s median >= {targets.tokens_per_second:g}; noise margin {targets.noise_margin_percent:g} %"
    )
    for path, s in summaries.items():
        write(f"{path}: headroom to the target (negative: past it) {headroom(s, targets)}")
    for path, (missing, first) in config.stash.get(REMEASURED, {}).items():
        write(f"{path}: measured again, the first set missed {', '.join(missing)} ({headroom(first, targets)})")
