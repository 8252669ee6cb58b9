"""The decode-speed floor per device class (roles/model_server/decode_floors.py): what a site's latency target and
probe alert default to, the slowest class of a mixed site, an inventory value winning, and the docs made from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from roles.common.settings import InventoryError
from roles.inventory.load import build_site, load_inventory, site_from_inventory
from roles.model_server.decode_floors import CPU_CLASS, DECODE_FLOORS, LAVAPIPE_CLASS, RADV_CLASS, device_class
from roles.model_server.settings import CPU, LAVAPIPE, RADV, VULKAN, ModelServerSettings
from roles.monitor.alerts import alert_groups
from roles.monitor.prometheus import alert_thresholds
from roles.monitor.settings import ALERT_FLOOR_PERCENT, MonitorSettings
from roles.site.settings import LatencyTargets
from tests.support.sites import good_hosts
from tools import docs

REPO = Path(__file__).resolve().parents[2]
DEVICE = {
    RADV_CLASS: {"model_server_compute": VULKAN, "model_server_vulkan_driver": RADV},
    LAVAPIPE_CLASS: {"model_server_compute": VULKAN, "model_server_vulkan_driver": LAVAPIPE},
    CPU_CLASS: {"model_server_compute": CPU},
}


def site_of(*backend_classes: str, **site_wide):
    """The good site with one backend per class given (in order), and ``site_wide`` keys on every host."""
    hosts = good_hosts()
    back = hosts.pop("back")[1]
    for n, name in enumerate(backend_classes):
        hosts[f"back{n}"] = (("backend",), {**back, "ssh_hostname": f"10.0.0.{20 + n}", **DEVICE[name]})
    for _, data in hosts.values():
        data.update(site_wide)
    return build_site(hosts)


def alert_floor(site) -> float:
    """The decode floor as the deployed alert rule reads it."""
    rules = {r.name: r for g in alert_groups(site.prometheus_config().thresholds) for r in g.rules}
    expr = rules["ClawlanTokensPerSecondLow"].expr
    return float(expr.rsplit("<", 1)[1])


def test_every_device_class_the_settings_allow_has_a_floor_and_a_source():
    for compute in (CPU, VULKAN):
        for driver in (RADV, LAVAPIPE):
            floor = DECODE_FLOORS[device_class(ModelServerSettings(compute=compute, vulkan_driver=driver))]
            assert floor.source.strip()
    assert set(DECODE_FLOORS) == {RADV_CLASS, LAVAPIPE_CLASS, CPU_CLASS}


@pytest.mark.parametrize(
    "device, target, alert",
    [(RADV_CLASS, 25.0, 20.0), (LAVAPIPE_CLASS, 40.0, 32.0), (CPU_CLASS, 0.0, 0.0)],
)
def test_a_site_defaults_to_its_backends_device_class(device, target, alert):
    site = site_of(device)
    assert site.latency.tokens_per_second == target
    assert site.latency.allowed()["tokens_per_second_median"] == target
    assert site.monitor.alert_tokens_per_second_floor == alert
    assert alert_floor(site) == alert


def test_the_radv_floor_is_the_published_figure_less_its_margin_and_the_alert_sits_below_it():
    radv = DECODE_FLOORS[RADV_CLASS]
    assert radv.from_tokens_per_second == 42.7 and radv.tokens_per_second == 25.0 and radv.margin_percent == 41
    assert "published" in radv.source.lower() and "reference box" in radv.source
    assert alert_floor(site_of(RADV_CLASS)) == radv.tokens_per_second * ALERT_FLOOR_PERCENT / 100


def test_a_cpu_class_has_no_floor_to_project_from():
    cpu = DECODE_FLOORS[CPU_CLASS]
    assert cpu.tokens_per_second is None and cpu.margin_percent is None


@pytest.mark.parametrize(
    "backends, target",
    [
        ((RADV_CLASS, RADV_CLASS), 25.0),
        ((LAVAPIPE_CLASS, RADV_CLASS), 25.0),  # the lower floor of the two
        ((RADV_CLASS, LAVAPIPE_CLASS), 25.0),  # whatever the order
        ((RADV_CLASS, CPU_CLASS), 0.0),  # a class with no figure might be the slowest: no floor
        ((LAVAPIPE_CLASS, CPU_CLASS), 0.0),
    ],
)
def test_a_mixed_site_is_held_to_its_slowest_class(backends, target):
    site = site_of(*backends)
    assert len(site.topology.backends) == len(backends)
    assert site.latency.tokens_per_second == target
    assert alert_floor(site) == target * ALERT_FLOOR_PERCENT / 100


@pytest.mark.parametrize("device", [RADV_CLASS, CPU_CLASS])
def test_the_inventorys_target_wins_and_the_alert_follows_it(device):
    site = site_of(device, latency_tokens_per_second=30)
    assert site.latency.tokens_per_second == 30
    assert alert_floor(site) == 24.0


def test_the_inventorys_alert_floor_wins_over_the_target():
    site = site_of(LAVAPIPE_CLASS, monitor_alert_tokens_per_second_floor=10.0)
    assert site.latency.tokens_per_second == 40.0
    assert alert_floor(site) == 10.0
    off = site_of(RADV_CLASS, latency_tokens_per_second=0, monitor_alert_tokens_per_second_floor=0)
    assert (off.latency.tokens_per_second, alert_floor(off)) == (0, 0)


def test_auto_written_out_is_the_default():
    written = site_of(LAVAPIPE_CLASS, latency_tokens_per_second="auto", monitor_alert_tokens_per_second_floor="auto")
    assert (written.latency, written.monitor) == (site_of(LAVAPIPE_CLASS).latency, site_of(LAVAPIPE_CLASS).monitor)


def test_the_targets_are_site_wide():
    hosts = good_hosts()
    hosts["back"][1]["latency_tokens_per_second"] = 30.0
    with pytest.raises(InventoryError, match="latency_tokens_per_second"):
        build_site(hosts)


def test_an_unresolved_auto_is_never_used_as_a_number():
    with pytest.raises(ValueError, match="auto"):
        LatencyTargets().allowed()
    with pytest.raises(ValueError, match="auto"):
        alert_thresholds(MonitorSettings(), 30, 600, (), "haproxy", ())


@pytest.mark.parametrize("inventory", ["inventory/lab.py", "inventory/lab_scaleout.py"])
def test_the_lab_states_its_slowest_class_floor_lavapipe(inventory):
    """lab_scaleout's second backend is on the cpu class, which has no floor: the lab states lavapipe's itself."""
    site = site_from_inventory(load_inventory(str(REPO / inventory), cwd=str(REPO)))
    assert site.latency.tokens_per_second == DECODE_FLOORS[LAVAPIPE_CLASS].tokens_per_second


def test_the_reference_site_gets_the_radv_floor():
    site = site_from_inventory(load_inventory(str(REPO / "inventory/site.py"), cwd=str(REPO)))
    assert site.latency.tokens_per_second == DECODE_FLOORS[RADV_CLASS].tokens_per_second


def test_the_docs_give_each_class_its_floor_and_source_and_the_keys_point_there():
    table = docs.decode_floors_table()
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in table.splitlines() if line.startswith("| `")}
    assert set(rows) == {f"`{name}`" for name in DECODE_FLOORS}
    assert "| 25 | 42.7 | 41 % |" in rows[f"`{RADV_CLASS}`"]
    assert "| 40 | 60 | 33 % |" in rows[f"`{LAVAPIPE_CLASS}`"]
    assert "| none (0) | — | — |" in rows[f"`{CPU_CLASS}`"]
    for name, floor in DECODE_FLOORS.items():
        assert floor.source in rows[f"`{name}`"]
    assert f"{ALERT_FLOOR_PERCENT} % of the site's `latency_tokens_per_second`" in table
    latency = next(r for r in docs.settings_table("latency").splitlines() if "`latency_tokens_per_second`" in r)
    assert '| `"auto"` |' in latency and "per device class" in latency and "Decode floors" in latency
    monitor = next(r for r in docs.settings_table("monitor").splitlines() if "alert_tokens_per_second_floor" in r)
    assert '| `"auto"` |' in monitor and f"{ALERT_FLOOR_PERCENT} % of latency_tokens_per_second" in monitor
    assert "28-32" not in monitor  # the old, unsourced figure


def test_timeouts_cover_the_worst_chat_the_site_can_send_with_half_as_much_again():
    """radv: 32768 tokens at 454 tokens/s (72 s) and 4096 at the floor of 25 (164 s): the defaults (600 s) cover
    half as much again; less is refused before any host is touched, naming host, key and the figure."""
    site_of(RADV_CLASS)  # the defaults pass
    with pytest.raises(InventoryError) as error:
        site_of(RADV_CLASS, gateway_request_timeout_s=300, mtls_read_timeout_s=100)
    text = str(error.value)
    assert "host 'front', key 'gateway_request_timeout_s': 300 s would cut off chats" in text and "at least 354" in text
    for host in ("front", "back0"):
        assert f"host '{host}', key 'mtls_read_timeout_s': 100 s would cut off" in text and "at least 108" in text


def test_a_class_with_no_published_prompt_rate_derives_no_timeout():
    site_of(CPU_CLASS, gateway_request_timeout_s=10, mtls_read_timeout_s=5)
