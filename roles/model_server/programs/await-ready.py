"""ExecStartPost of clawlan-model-server: wait until the server is ready to serve chats.

llama-server answers /health with 200 once the model is loaded (503 before). llama-cpp-python has no /health:
a one-token completion proves the model is loaded and generating. Gives up at once if the server process
(systemd's $MAINPID) has died.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

DEADLINE_S = float(os.environ.get("READY_TIMEOUT_S", "880"))
if os.environ.get("READY_CHECK") == "health":
    url, body, headers = f"http://127.0.0.1:{os.environ['PORT']}/health", None, {}
else:
    url = f"http://127.0.0.1:{os.environ['PORT']}/v1/completions"
    body = json.dumps({"prompt": "ok", "max_tokens": 1}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {os.environ['API_KEY']}"}

deadline = time.monotonic() + DEADLINE_S
last: object = "no answer yet"
while True:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=60) as response:
            if response.status == 200 and (body is None or json.load(response)["choices"]):
                sys.exit(0)
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError, KeyError) as error:
        last = error
    try:
        os.kill(int(os.environ.get("MAINPID", os.getpid())), 0)  # /proc is private to each process here
    except ProcessLookupError:
        print(f"model server exited before it answered: {last}", file=sys.stderr)
        sys.exit(1)
    if time.monotonic() > deadline:
        print(f"model server not answering after {DEADLINE_S:.0f}s: {last}", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.5)
