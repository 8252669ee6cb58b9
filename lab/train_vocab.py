"""Train the tiny model's vocabulary once; lab/tiny_vocab.txt, which lab/tiny_model.py reads, is its output.

    pip install sentencepiece==0.2.3 && python -m lab.train_vocab [lab/tiny_vocab.txt]

A byte-level, character-per-token vocabulary made OpenClaw's 27k-character system prompt ~24k tokens: every
gateway chat then evaluated its new tokens against that deep a context (~1.5 ms a token) and decoded at ~8 ms a
token on the lab, about three times the cost a real model's tokenizer implies. A SentencePiece BPE model (Llama's
kind, which llama.cpp's SPM tokenizer reads as is) trained on English technical prose brings the prompt to ~10k
tokens. The prose is the Python reference's pydoc topics, present wherever Python is; the output is committed,
so the model's bytes do not depend on which Python ran this.

The file holds the pieces after <unk>, <s>, </s> and the 256 byte tokens, in SentencePiece's order, one per line;
a piece's score is minus its position (0 for the first line), as in SentencePiece's own BPE models.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

VOCAB_SIZE = 8000  # prompt tokens fall ~2.5x from per-character; 4000 gives ~10% more tokens, 2000 ~25% more
DEFAULT_OUTPUT = Path(__file__).with_name("tiny_vocab.txt")
FIXED_PIECES = 3 + 256  # <unk>, <s>, </s>, then <0x00>..<0xFF>, in that order in both SentencePiece and GGUF


def corpus() -> str:
    import pydoc_data.topics

    return "\n".join(pydoc_data.topics.topics[name] for name in sorted(pydoc_data.topics.topics))


def train(output: Path) -> None:
    import sentencepiece

    with tempfile.TemporaryDirectory() as work:
        text = Path(work, "corpus.txt")
        text.write_text(corpus())
        sentencepiece.SentencePieceTrainer.train(
            input=str(text),
            model_prefix=f"{work}/tiny",
            vocab_size=VOCAB_SIZE,
            model_type="bpe",
            byte_fallback=True,  # any input tokenizes: what no piece covers becomes byte tokens
            split_digits=True,  # one token per digit, as Llama's and Qwen's tokenizers do
            character_coverage=1.0,
            normalization_rule_name="identity",  # llama.cpp applies no normalization either
            remove_extra_whitespaces=False,
            allow_whitespace_only_pieces=True,  # indentation runs become single tokens
            max_sentence_length=100_000,
            num_threads=1,  # one thread: the same merges on every run
            minloglevel=2,
        )
        model = sentencepiece.SentencePieceProcessor(model_file=f"{work}/tiny.model")
    fixed = [model.id_to_piece(i) for i in range(FIXED_PIECES)]
    if fixed != ["<unk>", "<s>", "</s>"] + [f"<0x{byte:02X}>" for byte in range(256)]:
        raise SystemExit(f"unexpected special pieces {fixed[:5]}...: lab/tiny_model.py writes those itself")
    pieces = [model.id_to_piece(i) for i in range(FIXED_PIECES, model.get_piece_size())]
    if any("\n" in piece for piece in pieces):
        raise SystemExit("a piece holds a newline: the one-piece-per-line file cannot hold it")
    output.write_text("\n".join(pieces) + "\n", encoding="utf-8")
    print(f"{len(pieces)} pieces -> {output}")


if __name__ == "__main__":
    train(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT)
