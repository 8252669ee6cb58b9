"""lab/qwen_model.py: a tiny qwen3next GGUF with Qwen's tokenizer. Its bytes are pinned (lab/paths.py), its
tokenizer is Qwen3's (ids, special tokens, merges), its hyperparameters are the ones llama.cpp's qwen3next loader
requires, and random weights can never end an answer or emit Qwen's markup (zero output rows)."""

import struct
from pathlib import Path

import numpy as np
import pytest

from lab import qwen_model
from lab.paths import QWEN_MODEL_SHA256

ARCH = qwen_model.ARCH
# GGUF value types (gguf.GGUFValueType): struct formats of the scalars; 8 is a string, 9 an array
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
TENSOR_TYPES = {0: np.float32, 1: np.float16}


class Gguf:
    """The file read back by a few lines of struct: gguf's GGUFReader takes ~7 s over Qwen's 151936 tokens."""

    def __init__(self, path: Path):
        self.data = path.read_bytes()
        self.at = 0
        magic, version, n_tensors, n_keys = self.read("<4sIQQ")
        assert (magic, version) == (b"GGUF", 3)
        self.fields = {}
        for _ in range(n_keys):
            key = self.string()
            self.fields[key] = self.value(self.read("<I")[0])
        infos = []
        for _ in range(n_tensors):
            name = self.string()
            dims = self.read(f"<{self.read('<I')[0]}Q")
            kind, offset = self.read("<IQ")
            infos.append((name, tuple(reversed(dims)), kind, offset))
        alignment = self.fields.get("general.alignment", 32)
        start = -(-self.at // alignment) * alignment
        self.tensors = {}
        for name, shape, kind, offset in infos:
            dtype = TENSOR_TYPES[kind]
            count = int(np.prod(shape))
            self.tensors[name] = np.frombuffer(self.data, dtype, count, start + offset).reshape(shape)

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values

    def string(self) -> str:
        (size,) = self.read("<Q")
        self.at += size
        return self.data[self.at - size : self.at].decode("utf-8")

    def value(self, kind: int):
        if kind == 8:
            return self.string()
        if kind == 9:
            item, count = self.read("<IQ")
            if item in SCALARS:
                return list(self.read(f"<{count}{SCALARS[item]}"))
            return [self.value(item) for _ in range(count)]
        return self.read("<" + SCALARS[kind])[0]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("qwen") / "model.gguf"
    sha256 = qwen_model.generate(path)
    return sha256, path, Gguf(path)


def field(reader, key):
    return reader.fields[key]


def tensor(reader, name) -> np.ndarray:
    assert name in reader.tensors, f"no tensor {name}"
    return reader.tensors[name]


def test_generates_the_pinned_bytes(model):
    sha256, path, _ = model
    assert sha256 == QWEN_MODEL_SHA256, (
        "lab/qwen_model.py no longer writes the pinned model (fixed seed, pinned gguf and numpy): if the change is "
        "intended, pin the new sha256 in lab/paths.py"
    )
    assert 40 << 20 < path.stat().st_size < 48 << 20  # ~44 MB: two vocabulary-sized F16 matrices and the tokenizer


def test_the_keys_llama_cpp_requires_for_qwen3next(model):
    _, _, reader = model
    assert field(reader, "general.architecture") == ARCH
    want = {
        "context_length": qwen_model.CONTEXT,
        "embedding_length": qwen_model.WIDTH,
        "block_count": 4,
        "attention.head_count": qwen_model.HEADS,
        "attention.head_count_kv": qwen_model.KV_HEADS,
        "attention.key_length": qwen_model.HEAD_DIM,
        "attention.value_length": qwen_model.HEAD_DIM,
        "rope.dimension_count": qwen_model.ROPE_DIMS,
        "expert_count": 4,
        "expert_used_count": 2,
        "expert_feed_forward_length": qwen_model.EXPERT_FEED_FORWARD,
        "expert_shared_feed_forward_length": qwen_model.SHARED_EXPERT_FEED_FORWARD,
        "ssm.conv_kernel": qwen_model.SSM_CONV_KERNEL,
        "ssm.inner_size": qwen_model.SSM_INNER,
        "ssm.state_size": qwen_model.SSM_STATE,
        "ssm.time_step_rank": qwen_model.SSM_TIME_STEP_RANK,
        "ssm.group_count": qwen_model.SSM_GROUPS,
        "full_attention_interval": 4,
    }
    for key, value in want.items():
        assert field(reader, f"{ARCH}.{key}") == value, key
    assert field(reader, f"{ARCH}.ssm.inner_size") == field(reader, f"{ARCH}.ssm.state_size") * field(
        reader, f"{ARCH}.ssm.time_step_rank"
    )  # llama.cpp's delta net needs it
    for key in (f"{ARCH}.attention.layer_norm_rms_epsilon", f"{ARCH}.rope.freq_base", "tokenizer.chat_template"):
        assert key in reader.fields, key


def test_three_delta_net_layers_and_one_full_attention_layer(model):
    _, _, reader = model
    names = set(reader.tensors)
    recurrent = ("attn_qkv.weight", "attn_gate.weight", "ssm_conv1d.weight", "ssm_dt.bias", "ssm_a", "ssm_ba.weight")
    recurrent += ("ssm_norm.weight", "ssm_out.weight")
    attention = ("attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "attn_q_norm.weight")
    attention += ("attn_k_norm.weight",)
    every = ("attn_norm.weight", "post_attention_norm.weight", "ffn_gate_inp.weight", "ffn_gate_exps.weight")
    every += ("ffn_up_exps.weight", "ffn_down_exps.weight", "ffn_gate_inp_shexp.weight", "ffn_gate_shexp.weight")
    every += ("ffn_up_shexp.weight", "ffn_down_shexp.weight")
    for block in range(4):
        kind, other = (attention, recurrent) if block == 3 else (recurrent, attention)
        for suffix in kind + every:
            assert f"blk.{block}.{suffix}" in names
        for suffix in other:
            assert f"blk.{block}.{suffix}" not in names
    assert {"token_embd.weight", "output_norm.weight", "output.weight"} <= names
    # the attention layer's attn_q carries the query and its gate: twice the heads' width
    assert tensor(reader, "blk.3.attn_q.weight").shape == (qwen_model.HEADS * qwen_model.HEAD_DIM * 2, 64)


def test_qwen3_tokenizer(model):
    _, _, reader = model
    from gguf import TokenType

    assert field(reader, "tokenizer.ggml.model") == "gpt2"
    assert field(reader, "tokenizer.ggml.pre") == "qwen2"
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    assert len(tokens) == len(types) == 151936  # Qwen3's embedding rows
    assert len(field(reader, "tokenizer.ggml.merges")) == 151387
    assert field(reader, "tokenizer.ggml.bos_token_id") == 151643
    assert field(reader, "tokenizer.ggml.padding_token_id") == 151643
    assert field(reader, "tokenizer.ggml.eos_token_id") == 151645
    assert field(reader, "tokenizer.ggml.add_bos_token") is False
    assert tokens[151643:151646] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert tokens[151657] == "<tool_call>" and tokens[151668] == "</think>"
    assert tokens[151669] == "[PAD151669]" and tokens[-1] == "[PAD151935]"
    assert types[151644] == TokenType.CONTROL and types[151657] == TokenType.USER_DEFINED
    assert types[151669] == TokenType.UNUSED and types[1000] == TokenType.NORMAL
    # well-known ids: "The quick brown fox" is 785, 3974, 13876, 38835 to every Qwen2/Qwen3 tokenizer
    assert [tokens[i] for i in (785, 3974, 13876, 38835)] == ["The", "Ġquick", "Ġbrown", "Ġfox"]
    assert tokens[198] == "Ċ" and tokens[128247] == "</s>"
    template = field(reader, "tokenizer.chat_template")
    assert "<tool_call>" in template and "<|im_start|>" in template and "tools" in template


def test_no_special_token_can_be_chosen(model):
    _, _, reader = model
    output = tensor(reader, "output.weight")
    assert output.shape == (151936, 64)
    assert not output[151643:].any()  # EOS, markup, padding: never chosen, so no early stop
    assert not output[128247].any()  # "</s>", an end-of-generation token to llama.cpp
    assert np.count_nonzero(np.abs(output[:151643]).sum(axis=1)) == 151643 - 1


def test_vocabulary_file_is_one_merge_a_line():
    lines = qwen_model.VOCABULARY.read_bytes().decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == 151643
    assert all(len(line) == 1 for line in lines[:256])  # the byte alphabet
    assert all(line.count(" ") == 1 for line in lines[256:-1])
