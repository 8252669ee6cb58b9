"""Progress of the long steps (roles/common/progress.py): what a person reads while a compile runs or a model moves,
how a failure looks, and that the transfer's figures add up."""

from __future__ import annotations

import logging

import gevent
import pytest
from pyinfra.api.command import StringCommand
from pyinfra.connectors.util import CommandOutput, OutputLine

from roles.common import progress


class Host:
    """A host whose commands take ``seconds`` and whose partial download grows by ``step`` bytes at each stat."""

    name, print_prefix, data = "back", "[back] ", {}

    def __init__(self, seconds: float = 0.0, ok: bool = True, step: int = 0):
        self.seconds, self.ok, self.step, self.size, self.commands = seconds, ok, step, 0, []

    def run_shell_command(self, command: StringCommand, **arguments):
        text = str(command)
        self.commands.append((text, arguments))
        if text.startswith("stat -c %s"):
            self.size += self.step
            return True, CommandOutput([OutputLine("stdout", str(self.size))])
        gevent.sleep(self.seconds)
        return self.ok, CommandOutput([OutputLine("stderr", "cc1: out of memory")])


@pytest.fixture
def said(caplog):
    caplog.set_level(logging.INFO, logger="pyinfra")
    return lambda: [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(
    "done, total, rate, line",
    [
        (int(12.3 * 2**30), 45 * 2**30, 110 * 2**20, "12.3 of 45.0 GiB (27 %), 110 MiB/s, about 5 min 04 s left"),
        (30 * 2**20, 45 * 2**20, 10 * 2**20, "30.0 of 45.0 MiB (67 %), 10 MiB/s, about 2 s left"),
        (45 * 2**20, 45 * 2**20, 10 * 2**20, "45.0 of 45.0 MiB (100 %), 10 MiB/s"),
        (5 * 2**20, None, 0.0, "5.0 MiB, 0 MiB/s"),
    ],
)
def test_a_transfer_reads_as_amount_rate_and_time_left(done, total, rate, line):
    assert progress.transfer_line(done, total, rate) == line


def test_a_long_phase_says_it_runs_every_interval_and_how_long_it_took(said):
    host = Host(seconds=0.35)
    assert progress._run(None, host, "compiling llama-server", "make", 0.1, None) is True
    lines = said()
    assert lines[0] == "[back] compiling llama-server: started"
    assert 2 <= sum("compiling llama-server: running for" in line for line in lines) <= 4
    assert lines[-1] == "[back] compiling llama-server: done in 0 s"
    assert host.commands == [("make", {})]


def test_a_failed_phase_shows_its_output_and_fails_the_operation_without_a_traceback(said, capsys):
    host = Host(ok=False)
    host.data = {"_sudo": True}
    assert progress._run(None, host, "compiling", "make", 10, None) is False
    assert host.commands == [("make", {"_sudo": True})]  # as the operation's own commands run
    assert said()[-1] == "[back] compiling: failed after 0 s"
    assert "cc1: out of memory" in capsys.readouterr().err + "\n".join(said())


def test_a_download_reports_its_size_rate_and_time_left_from_the_growing_file(said):
    host = Host(seconds=0.35, step=10 * 2**20)
    progress._run(None, host, "downloading the model", "curl", 0.1, ("/m.gguf.partial", 100 * 2**20))
    ticks = [line for line in said() if "MiB/s" in line]
    assert ticks and all("of about 100.0 MiB" in line and "left" in line for line in ticks), ticks
    assert all(command.startswith("stat -c %s /m.gguf.partial ") or command == "curl" for command, _ in host.commands)


def test_an_upload_says_how_far_it_is_and_when_it_is_sent(tmp_path, said):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x" * (3 * 2**20))
    reader = progress.ProgressReader(Host(), "sending the model", str(model), every_s=0)
    reader.seek(0)
    while reader.read(2**20):
        pass
    reader.close()
    lines = said()
    assert [line.split(": ", 1)[1].split(",")[0] for line in lines[:3]] == [
        "1.0 of 3.0 MiB (33 %)", "2.0 of 3.0 MiB (67 %)", "3.0 of 3.0 MiB (100 %)"]  # fmt: skip
    assert lines[-1].startswith("[back] sending the model: 3.0 MiB sent in ") and len(lines) == 4
