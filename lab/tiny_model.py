"""The lab's stand-in for the real model: a ~4.6 MB llama-architecture GGUF with random weights.

It loads in milliseconds, takes a 64k context, and tokenizes like a real model: its vocabulary is an 8000-piece
SentencePiece BPE (lab/train_vocab.py), so OpenClaw's system prompt is ~10k tokens, not a token per character.
Because the output rows of control and byte tokens are zero, it emits printable text and never EOS: every
request yields exactly max_tokens tokens, which makes token-rate checks exact. The bytes are
reproducible (fixed seed, pinned gguf and numpy), so inventory/lab.py can pin its sha256.

    python -m lab.tiny_model PATH
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

WIDTH = 64
LAYERS = 2
HEADS = 4
FEED_FORWARD = 128
CONTEXT = 65536
SEED = 20261121
VOCABULARY = Path(__file__).with_name("tiny_vocab.txt")  # lab/train_vocab.py made it

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """Llama's SentencePiece layout: <unk>, <s>, </s>, the 256 byte tokens (without them any input outside the
    pieces crashes llama.cpp's SPM tokenizer), then lab/tiny_vocab.txt's BPE pieces, scored by their order."""
    from gguf import TokenType

    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{byte:02X}>" for byte in range(256)]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
    # Bytes, not text mode: universal newlines would turn a piece's "\r" into a line break.
    pieces = VOCABULARY.read_bytes().decode("utf-8").split("\n")[:-1]
    tokens += pieces
    types += [TokenType.NORMAL] * len(pieces)
    scores = [0.0] * (3 + 256) + [-float(rank) for rank in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def generate(path: Path) -> str:
    """Write the model to ``path`` (through a temporary file) and return its sha256."""
    from gguf import GGUFWriter

    tokens, scores, types = vocabulary()
    rng = np.random.default_rng(SEED)

    def weights(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    partial = path.with_name(path.name + ".partial")
    writer = GGUFWriter(str(partial), "llama")
    writer.add_name("clawlan-tiny")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(WIDTH)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(WIDTH // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(0)  # all F32
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template(CHAT_TEMPLATE)

    vocab = len(tokens)
    output = weights(vocab, WIDTH)
    output[: 3 + 256] = 0.0  # never choose a control or byte token: printable text, no EOS
    writer.add_tensor("token_embd.weight", weights(vocab, WIDTH))
    writer.add_tensor("output_norm.weight", np.ones(WIDTH, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for block in range(LAYERS):
        prefix = f"blk.{block}."
        writer.add_tensor(prefix + "attn_norm.weight", np.ones(WIDTH, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(prefix + name + ".weight", weights(WIDTH, WIDTH))
        writer.add_tensor(prefix + "ffn_norm.weight", np.ones(WIDTH, dtype=np.float32))
        writer.add_tensor(prefix + "ffn_gate.weight", weights(FEED_FORWARD, WIDTH))
        writer.add_tensor(prefix + "ffn_up.weight", weights(FEED_FORWARD, WIDTH))
        writer.add_tensor(prefix + "ffn_down.weight", weights(WIDTH, FEED_FORWARD))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(path)
    return sha256_of(path)


def sha256_of(path: Path) -> str:
    from roles.common.files import sha256_file

    return sha256_file(str(path))


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"{generate(target)}  {target}")
