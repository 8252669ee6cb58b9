"""ExecStartPost (as root: "+") of clawlan-model-server on a GPU build: keep this start's device lines.

The deploy and LLM-11 prove where the model went from what the server logged as it started (offload.py). At the
verbosity those lines need, the server also logs every chat, so after weeks of use journald may have rotated the
start-up lines away, and a running site could no longer show its proof. Once the server is ready, this copies them
to FILE under a first line naming the start (systemd's $INVOCATION_ID); the next start writes it again.

    record-startup.py FILE MARKER...   (a line is kept when it holds a marker; any but the first ends the story)

It never fails the start: without a record the readers fall back to the journal.
"""

import os
import subprocess
import sys
import time

path, markers = sys.argv[1], sys.argv[2:]
invocation = os.environ.get("INVOCATION_ID", "")
lines: list[str] = []
try:
    for _ in range(20):  # journald takes in a service's output a moment after it is written
        journal = subprocess.run(
            ["journalctl", "--no-pager", "--quiet", "--output", "cat", f"_SYSTEMD_INVOCATION_ID={invocation}"],
            capture_output=True, text=True, check=False, timeout=30,
        ).stdout  # fmt: skip
        lines = [line for line in journal.splitlines() if any(marker in line for marker in markers)][:100]
        if any(marker in line for line in lines for marker in markers[1:]):
            break
        time.sleep(0.5)
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as record:
        record.write("".join(f"{line}\n" for line in [f"invocation={invocation}", *lines]))
    os.chmod(partial, 0o644)
    os.replace(partial, path)
except (OSError, subprocess.SubprocessError) as error:
    print(f"start-up lines not recorded in {path}: {error}", file=sys.stderr)
