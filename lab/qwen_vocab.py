"""Write lab/qwen_vocab.txt, Qwen's byte-level BPE vocabulary, which lab/qwen_model.py reads, once, from the pinned
llama-cpp-python sdist (roles/model_server/settings.py's version, hash in locks/llama-cpp-python/):

    pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d DIR
    python -m lab.qwen_vocab DIR/llama_cpp_python-0.3.36.tar.gz [lab/qwen_vocab.txt]

The sdist carries it in vendor/llama.cpp/models/ggml-vocab-qwen2.gguf (tokens and merges, no weights). The sdist is
not on the control machine when the lab comes up (the model_server role downloads it on the backend and deletes it
after the build), so the vocabulary is committed, in a compact form: in Qwen's vocabulary, merge i makes token 256+i
for every one of its 151387 merges, so one line per token carries both. Line i is token i: the 256 byte tokens as
they are, then each merged token as its merge, left and right part separated by a space (no token contains a space:
byte-level BPE spells it "Ġ"). ~1.1 MB of text; Qwen's special and added tokens (ids 151643 on) are written by
lab/qwen_model.py.
"""

from __future__ import annotations

import sys
import tarfile
import tempfile
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).with_name("qwen_vocab.txt")
MEMBER = "vendor/llama.cpp/models/ggml-vocab-qwen2.gguf"
BASE_TOKENS = 151643  # ids below <|endoftext|>: the byte tokens and the merged ones
BYTE_TOKENS = 256


def lines_from_gguf(path: Path) -> list[str]:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()[:BASE_TOKENS]
    merges = reader.fields["tokenizer.ggml.merges"].contents()
    if len(merges) != BASE_TOKENS - BYTE_TOKENS:
        raise SystemExit(f"{len(merges)} merges, expected {BASE_TOKENS - BYTE_TOKENS}")
    for token in tokens:
        if any(space in token for space in " \n\r\t"):
            raise SystemExit(f"token {token!r} holds white space: the one-line-per-token form cannot carry it")
    for rank, merge in enumerate(merges):
        if merge.count(" ") != 1 or merge.replace(" ", "") != tokens[BYTE_TOKENS + rank]:
            raise SystemExit(f"merge {rank} ({merge!r}) does not make token {BYTE_TOKENS + rank}")
    return tokens[:BYTE_TOKENS] + merges


def main(sdist: Path, output: Path) -> None:
    with tarfile.open(sdist) as tar, tempfile.TemporaryDirectory() as scratch:
        member = next(m for m in tar.getmembers() if m.name.endswith("/" + MEMBER))
        source = tar.extractfile(member)
        assert source is not None
        vocab = Path(scratch) / "vocab.gguf"
        vocab.write_bytes(source.read())
        lines = lines_from_gguf(vocab)
    output.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    print(f"{output}: {len(lines)} tokens")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_OUTPUT)
