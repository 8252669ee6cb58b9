"""tools/enrol.py: a host key is trusted deliberately, for the host's address and name, replacing what was there."""

from __future__ import annotations

import subprocess

import pytest

from tools import enrol as enrolment


@pytest.fixture
def keypair(tmp_path):
    key = tmp_path / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def body_of(keypair) -> str:
    return keypair.with_suffix(".pub").read_text().split()[1]


def test_the_fingerprint_is_the_one_ssh_keygen_prints(keypair):
    printed = subprocess.run(["ssh-keygen", "-lf", str(keypair.with_suffix(".pub"))], capture_output=True, text=True)
    assert enrolment.fingerprint(body_of(keypair)) == printed.stdout.split()[1]


def test_enrolling_replaces_the_hosts_old_lines_and_keeps_the_others(tmp_path, keypair):
    known = tmp_path / "known_hosts"
    known.write_text(
        "10.0.0.20,back ssh-ed25519 OLDKEY\n"
        "back ssh-rsa OLDRSA\n"
        "10.0.0.10,front ssh-ed25519 FRONTKEY\n"
        "# a comment naming back\n"
    )
    enrolment.enrol(known, ["10.0.0.20", "back"], body_of(keypair))
    assert known.read_text().splitlines() == [
        "10.0.0.10,front ssh-ed25519 FRONTKEY",
        "# a comment naming back",
        f"10.0.0.20,back ssh-ed25519 {body_of(keypair)}",
    ]
    assert enrolment.trusted(known, {"back"}) == [enrolment.fingerprint(body_of(keypair))]
    assert not list(tmp_path.glob(".known_hosts.*")), "a staged copy was left behind"


def test_a_non_standard_port_is_written_as_ssh_does():
    assert enrolment._host_field("10.0.0.20", 2222) == "[10.0.0.20]:2222"
    assert enrolment._host_field("10.0.0.20", 22) == "10.0.0.20"


def test_nothing_is_trusted_without_a_terminal_or_a_matching_fingerprint(tmp_path, keypair, monkeypatch, capsys):
    known = tmp_path / "known_hosts"
    known.write_text("10.242.17.20,lab-back ssh-ed25519 OLDKEY\n")
    monkeypatch.setattr(enrolment, "scan", lambda address, port: body_of(keypair))
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)

    class Host:
        name = "lab-back"
        data = type("Data", (), {"ssh_hostname": "10.242.17.20", "get": lambda self, key, default=None:
                                 {"ssh_known_hosts_file": str(known)}.get(key, default)})()  # fmt: skip

    monkeypatch.setattr(enrolment, "load_inventory", lambda *a, **k: [Host()])
    assert enrolment.main(["lab-back"]) == 1
    assert enrolment.main(["lab-back", "--fingerprint", "SHA256:" + "A" * 43]) == 1
    assert "nothing written" in capsys.readouterr().err
    assert known.read_text() == "10.242.17.20,lab-back ssh-ed25519 OLDKEY\n"
    assert enrolment.main(["lab-back", "--fingerprint", enrolment.fingerprint(body_of(keypair))]) == 0
    assert body_of(keypair) in known.read_text()
