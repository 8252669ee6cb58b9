"""make status: what it reads from Prometheus and how it shows it (tools/status.py); e2e test_05 and test_11 run it
against the lab's Prometheus, healthy and with alerts firing."""

from __future__ import annotations

from roles.site.settings import LatencyTargets
from tools import status
from tools.status import BOX_BARS, FIRING, PATH_QUERIES, POOL, Readings, bar, read, render

TARGETS = LatencyTargets(ttft_p99_s=0.7, inter_token_p99_s=0.04, tokens_per_second=25.0)


def sample(value: float, **labels: str) -> dict:
    return {"metric": labels, "value": [0, str(value)]}


def answers(**by_query: list[dict]):
    """A Prometheus that knows the given queries' answers and has no series for any other."""

    def query(promql: str) -> list[dict]:
        return by_query.get(promql, [])

    return query


def healthy() -> dict[str, list[dict]]:
    memory, memory_total = BOX_BARS[0][1], BOX_BARS[0][2]
    return {
        memory: [sample(0.25, instance="front"), sample(0.5, instance="back")],
        memory_total: [sample(16 * 2**30, instance="front"), sample(128 * 2**30, instance="back")],
        PATH_QUERIES["ttft_p99_s"]: [sample(0.35, path="gateway"), sample(1.4, path="backend")],
        PATH_QUERIES["inter_token_p99_s"]: [sample(0.02, path="gateway"), sample(float("nan"), path="backend")],
        PATH_QUERIES["tokens_per_second"]: [sample(40, path="gateway"), sample(10, path="backend")],
        PATH_QUERIES["success"]: [sample(1, path="gateway"), sample(0, path="backend")],
        POOL: [sample(1, instance="front", server="back", state="UP")],
    }


def test_a_bar_is_its_share_of_the_width_and_marks_what_runs_past_it():
    assert bar(0) == "[" + "." * 20 + "]"
    assert bar(0.5) == "[" + "#" * 10 + "." * 10 + "]"
    assert bar(3.0) == "[" + "#" * 20 + ">"


def test_each_box_shows_its_memory_against_its_total_and_each_path_against_its_targets():
    text = render(read(answers(**healthy())), ["front", "back"], TARGETS, title="t")
    assert "memory            [#####...............]  25 % of 16.0 GiB" in text
    assert "memory            [##########..........]  50 % of 128.0 GiB" in text
    gateway, backend = text.split("path gateway")[1].split("path backend")
    assert "(answering;" in gateway and "350 ms (within target 700 ms)" in gateway
    assert "(FAILING;" in backend and "1.40 s (past target 700 ms)" in backend
    assert "inter-token p99   [....................] no data" in backend  # NaN: no observations in the window
    assert "40.0 tokens/s (above floor 25)" in gateway and "10.0 tokens/s (below floor 25)" in backend
    assert "backends behind front: back UP" in text
    assert text.endswith("alerts firing: none")


def test_firing_alerts_are_listed_with_where_they_fire_and_the_watchdog_is_left_out():
    assert 'alertname!="Watchdog"' in FIRING and 'alertstate="firing"' in FIRING
    firing = [
        sample(1, alertname="ClawlanProbeFailing", severity="critical", path="backend", instance="front"),
        sample(1, alertname="ClawlanModelServerNotReady", severity="critical", instance="back"),
    ]
    readings = read(answers(**healthy(), **{FIRING: firing}))
    text = render(readings, ["front", "back"], TARGETS, title="t")
    assert "alerts firing: 2" in text
    assert "  ClawlanModelServerNotReady (critical): instance=back" in text
    assert "  ClawlanProbeFailing (critical): instance=front, path=backend" in text


def test_a_prometheus_without_series_gives_no_data_not_a_crash():
    readings = read(answers())
    assert readings == Readings()
    text = render(readings, ["front"], TARGETS, title="t")
    assert "no data (node exporter not scraped)" in text
    assert "(no probe result;" in text
    assert "backends: no balancer scraped" in text


def test_a_control_machine_without_the_sites_ca_or_password_is_told_to_deploy_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(status, "login_files", lambda site: (tmp_path / "ca.crt", tmp_path / "monitor-password"))
    assert status.main(["--inventory", "inventory/site.py"]) == 2
    message = capsys.readouterr().err
    assert f"no {tmp_path / 'ca.crt'} and no {tmp_path / 'monitor-password'}: the site's first deploy" in message
