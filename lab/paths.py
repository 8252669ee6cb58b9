"""Where the lab keeps its state (per clone) and its cache (per machine)."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("CLAWLAN_LAB_STATE", REPO / ".lab"))
CACHE_DIR = Path(os.environ.get("CLAWLAN_CACHE_DIR", "/var/cache/clawlan"))
# The containers, their network and the kernel values they change belong to the machine, not to one
# clone: the lock and the recorded kernel values live here, shared by every clone.
MACHINE_DIR = Path(os.environ.get("CLAWLAN_LAB_MACHINE_DIR", "/var/lib/clawlan-lab"))
TINY_MODEL = CACHE_DIR / "models" / "clawlan-tiny.gguf"
# lab/tiny_model.py writes these bytes; tests/unit/test_tiny_model.py proves it still does.
TINY_MODEL_SHA256 = "56b88b39186935788a6d5a8fbe556c845bb82a067ab3d1c43f6ae3833fc8a5dc"
# lab/qwen_model.py's model of the reference architecture (qwen3next, Qwen's tokenizer); not yet the lab's default.
# tests/unit/test_qwen_model.py proves the generator still writes these bytes.
QWEN_MODEL = CACHE_DIR / "models" / "clawlan-qwen3next-tiny.gguf"
QWEN_MODEL_SHA256 = "6f18eb47b13fa1f6b8692b71f721a5b7767f2ccc7918b38b2c9500a0b6dca2e2"
