"""The hardening every unit starts from (roles/common/hardening.py): one block, each directive once, and a unit
departs from it only where a comment of the unit says why."""

from __future__ import annotations

import pytest

from roles.common.hardening import BASELINE, sandbox
from roles.common.templates import TEMPLATES
from roles.inventory.load import build_site
from tests.support.site_files import site_files
from tests.support.units import directives
from tests.unit.test_inventory_validation import good_hosts

UNIT_TEMPLATES = sorted(path for path in TEMPLATES.glob("*/*.j2") if "[Service]" in path.read_text())
# It turns swap on for the kernel early in boot: CAP_SYS_ADMIN and the swap devices, what the sandbox keeps away.
UNSANDBOXED = {TEMPLATES / "base" / "clawlan-swapon.service"}
# What systemd reads as one more item of a list (or, empty, as a reset of it), not as a second value.
REPEATABLE = {"SystemCallFilter", "Environment", "EnvironmentFile", "ExecStart", "ExecStartPost"}


def lines_of(key: str, text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"{key}=")]


@pytest.fixture(scope="module")
def units() -> dict[str, str]:
    """Every unit and drop-in with a [Service] section that the deploys write on the hosts of a valid site."""
    return {name: text for name, text in site_files(build_site(good_hosts())).items() if "\n[Service]\n" in text}


def test_every_unit_template_starts_from_the_baseline():
    static = {path for path in TEMPLATES.glob("*/*") if path.suffix != ".j2" and "[Service]" in path.read_text()}
    assert static == UNSANDBOXED
    assert [path.name for path in UNIT_TEMPLATES if "{{ sandbox(" not in path.read_text()] == []


def test_every_unit_template_is_rendered_here(units):
    """What the other tests read: one rendered file per template (a new unit belongs in tests/support/site_files)."""
    assert len({name.split(":", 1)[1] for name in units}) == len(UNIT_TEMPLATES)


def test_a_rendered_unit_gives_each_directive_once(units):
    for name, text in units.items():
        keys = [key for key, _ in directives(text)]
        assert {key for key in keys if keys.count(key) > 1} - REPEATABLE == set(), name


def test_every_departure_from_the_baseline_is_explained(units):
    """A directive of the baseline that a unit leaves out or sets otherwise is named in one of its comments."""
    for name, text in units.items():
        found = directives(text)
        comments = " ".join(line for line in text.splitlines() if line.startswith("#"))
        for key, value in BASELINE.items():
            wanted = [value] if isinstance(value, str) else list(value)
            if [v for k, v in found if k == key] != wanted:
                assert key in comments, f"{name}: {key} departs from the baseline without a word on why"


def test_an_override_replaces_the_baseline_value():
    text = sandbox(SystemCallFilter="@system-service", CapabilityBoundingSet="CAP_NET_ADMIN")
    assert lines_of("SystemCallFilter", text) == ["SystemCallFilter=@system-service"]
    assert lines_of("CapabilityBoundingSet", text) == ["CapabilityBoundingSet=CAP_NET_ADMIN"]


def test_none_leaves_a_directive_out_and_additions_follow_the_baseline():
    keys = [line.split("=", 1)[0] for line in sandbox(PrivateTmp=None, ReadWritePaths="/x").splitlines()]
    baseline = [key for key, value in BASELINE.items() for _ in ((value,) if isinstance(value, str) else value)]
    assert keys == [key for key in baseline if key != "PrivateTmp"] + ["ReadWritePaths"]


def test_a_sequence_is_one_line_per_item_in_its_order():
    text = sandbox(SystemCallFilter=["@system-service", "~@privileged @resources", "mbind"])
    assert lines_of("SystemCallFilter", text) == [
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "SystemCallFilter=mbind",
    ]
