"""Where the lab keeps its state (per clone) and its cache (per machine)."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("CLAWLAN_LAB_STATE", REPO / ".lab"))
CACHE_DIR = Path(os.environ.get("CLAWLAN_CACHE_DIR", "/var/cache/clawlan"))
# The containers, their network and the kernel values they change belong to the machine, not to one
# clone: the lock and the recorded kernel values live here, shared by every clone.
MACHINE_DIR = Path(os.environ.get("CLAWLAN_LAB_MACHINE_DIR", "/var/lib/clawlan-lab"))
# The lab's model: lab/qwen_model.py's model of the reference architecture (qwen3next, Qwen's tokenizer), so a
# prompt costs as many tokens here as on the site and the server caches as it does there.
# tests/unit/test_qwen_model.py proves the generator still writes these bytes.
QWEN_MODEL = CACHE_DIR / "models" / "clawlan-qwen3next-tiny.gguf"
QWEN_MODEL_SHA256 = "6f18eb47b13fa1f6b8692b71f721a5b7767f2ccc7918b38b2c9500a0b6dca2e2"
# The older llama-architecture toy (lab/tiny_model.py, 4.6 MB): only where a test needs a second, small, valid model
# file to download, not the model people's chats are measured on. tests/unit/test_tiny_model.py pins its bytes.
LLAMA_TOY_MODEL = CACHE_DIR / "models" / "clawlan-tiny.gguf"
LLAMA_TOY_MODEL_SHA256 = "56b88b39186935788a6d5a8fbe556c845bb82a067ab3d1c43f6ae3833fc8a5dc"
