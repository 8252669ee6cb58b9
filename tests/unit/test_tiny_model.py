"""The lab's tiny model is reproducible: inventory/lab.py pins its sha256 (lab/paths.py), so the bytes
lab/tiny_model.py writes must not drift with a code change or a dependency bump."""

from lab.paths import LLAMA_TOY_MODEL_SHA256
from lab.tiny_model import generate


def test_generates_the_pinned_bytes(tmp_path):
    assert generate(tmp_path / "tiny.gguf") == LLAMA_TOY_MODEL_SHA256, (
        "lab/tiny_model.py no longer writes the pinned model: if the change is intended, pin the new sha256 in "
        "lab/paths.py (the lab then regenerates its cached model)"
    )
