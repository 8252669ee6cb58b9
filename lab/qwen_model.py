"""A lab model of the reference architecture: a ~44 MB `qwen3next` GGUF with Qwen's own tokenizer and random weights.

The reference backend serves Qwen3-Next-80B-A3B; this is the same architecture at toy size: 4 layers at width 64,
three gated-delta-net (recurrent) layers and one full-attention layer (full_attention_interval 4, as in the real
model's 48 layers), a mixture of 4 experts with 2 used plus a shared expert. Its vocabulary is Qwen's (byte-level BPE,
151643 tokens and their merges from lab/qwen_vocab.txt, Qwen3's special and added tokens, padded to 151936 as Qwen3's
GGUFs are) and its chat template Qwen3's, with tools (lab/qwen3_chat_template.jinja), so a prompt has as many tokens
here as on the reference model and the server runs the reference model's code paths (hybrid memory, context
checkpoints, MoE).

The output rows of Qwen's special, added and padding tokens (ids 151643 on) and of `</s>` (id 128247, an
end-of-generation token to llama.cpp) are zero: random weights never choose them, so every request yields exactly
max_tokens tokens. The bytes are reproducible (fixed seed, pinned gguf and numpy), so they can be pinned by sha256.

    python -m lab.qwen_model PATH
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from roles.common.files import sha256_file

ARCH = "qwen3next"
WIDTH = 64
LAYERS = 4
FULL_ATTENTION_INTERVAL = 4  # every 4th layer is full attention, the rest gated delta nets: layer 3 here
HEADS = 4
KV_HEADS = 2
HEAD_DIM = 16
ROPE_DIMS = 4  # Qwen3-Next rotates a quarter of each head (partial_rotary_factor 0.25)
ROPE_BASE = 10_000_000.0
EXPERTS = 4
EXPERTS_USED = 2
EXPERT_FEED_FORWARD = 32
SHARED_EXPERT_FEED_FORWARD = 32
SSM_CONV_KERNEL = 4
SSM_STATE = 16  # the delta net's head dimension (keys and values)
SSM_GROUPS = 2  # key heads
SSM_TIME_STEP_RANK = 4  # value heads
SSM_INNER = SSM_STATE * SSM_TIME_STEP_RANK  # llama.cpp requires inner size = state size x value heads
CONTEXT = 262144  # Qwen3-Next's trained context
RMS_EPS = 1e-6
SEED = 20261206

VOCABULARY = Path(__file__).with_name("qwen_vocab.txt")  # lab/qwen_vocab.py made it
CHAT_TEMPLATE = Path(__file__).with_name("qwen3_chat_template.jinja")  # llama.cpp's models/templates/Qwen-Qwen3-0.6B

VOCAB_SIZE = 151936  # Qwen3's embedding rows: the tokenizer's 151669 tokens, padded
BOS_ID = 151643  # <|endoftext|>; Qwen adds no BOS (add_bos_token false), llama.cpp wants an id
PAD_ID = 151643
EOS_ID = 151645  # <|im_end|>
END_OF_TEXT = "</s>"
END_OF_TEXT_ID = 128247  # a plain token in Qwen's vocabulary, but an end-of-generation token to llama.cpp
# Qwen3's special and added tokens, ids 151643 on (tokenizer_config.json's added_tokens_decoder): "special" ones and
# ones that look it (<|...|>) are CONTROL in a converted GGUF, the others USER_DEFINED.
ADDED_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)
FIRST_ADDED_ID = BOS_ID


def vocabulary() -> tuple[list[str], list[int], list[str]]:
    """Tokens, their types and the merges, as llama.cpp's converter writes Qwen3's tokenizer."""
    from gguf import TokenType

    # Bytes, not text mode: universal newlines would read a stray "\r" as a line break.
    lines = VOCABULARY.read_bytes().decode("utf-8").split("\n")[:-1]
    assert len(lines) == FIRST_ADDED_ID, f"{VOCABULARY}: {len(lines)} lines, expected {FIRST_ADDED_ID}"
    tokens = [line.replace(" ", "") for line in lines]
    merges = lines[256:]  # merge i makes token 256 + i (lab/qwen_vocab.py)
    types = [TokenType.NORMAL] * len(tokens)
    for token in ADDED_TOKENS:
        tokens.append(token)
        types.append(TokenType.CONTROL if token.startswith("<|") else TokenType.USER_DEFINED)
    padding = range(len(tokens), VOCAB_SIZE)
    tokens += [f"[PAD{i}]" for i in padding]
    types += [TokenType.UNUSED] * len(padding)
    assert tokens[END_OF_TEXT_ID] == END_OF_TEXT and tokens[EOS_ID] == "<|im_end|>"
    return tokens, [int(t) for t in types], merges


def generate(path: Path) -> str:
    """Write the model to ``path`` (through a temporary file) and return its sha256."""
    from gguf import GGUFWriter

    tokens, types, merges = vocabulary()
    rng = np.random.default_rng(SEED)

    # numpy shapes are ggml's dimensions reversed: a {n_embd, n_out} weight is (n_out, n_embd) here.
    def weights(*shape: int, dtype=np.float32) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(dtype)

    def ones(size: int) -> np.ndarray:
        return np.ones(size, dtype=np.float32)

    partial = path.with_name(path.name + ".partial")
    writer = GGUFWriter(str(partial), ARCH)
    writer.add_name("clawlan-qwen3next-tiny")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(WIDTH)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(EXPERT_FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_key_length(HEAD_DIM)
    writer.add_value_length(HEAD_DIM)
    writer.add_rope_dimension_count(ROPE_DIMS)
    writer.add_rope_freq_base(ROPE_BASE)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_expert_count(EXPERTS)
    writer.add_expert_used_count(EXPERTS_USED)
    writer.add_expert_feed_forward_length(EXPERT_FEED_FORWARD)
    writer.add_expert_shared_feed_forward_length(SHARED_EXPERT_FEED_FORWARD)
    writer.add_ssm_conv_kernel(SSM_CONV_KERNEL)
    writer.add_ssm_inner_size(SSM_INNER)
    writer.add_ssm_state_size(SSM_STATE)
    writer.add_ssm_time_step_rank(SSM_TIME_STEP_RANK)
    writer.add_ssm_group_count(SSM_GROUPS)
    writer.add_full_attention_interval(FULL_ATTENTION_INTERVAL)
    writer.add_file_type(1)  # mostly F16: the two vocabulary-sized matrices; the rest is F32
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_pad_token_id(PAD_ID)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE.read_bytes().decode("utf-8"))

    output = weights(VOCAB_SIZE, WIDTH, dtype=np.float16)
    output[FIRST_ADDED_ID:] = 0  # never choose a special, added or padding token: no EOS, no tool-call markup
    output[END_OF_TEXT_ID] = 0
    writer.add_tensor("token_embd.weight", weights(VOCAB_SIZE, WIDTH, dtype=np.float16))
    writer.add_tensor("output_norm.weight", ones(WIDTH))
    writer.add_tensor("output.weight", output)

    key_dim = SSM_STATE * SSM_GROUPS
    value_dim = SSM_STATE * SSM_TIME_STEP_RANK
    for block in range(LAYERS):
        prefix = f"blk.{block}."
        writer.add_tensor(prefix + "attn_norm.weight", ones(WIDTH))
        writer.add_tensor(prefix + "post_attention_norm.weight", ones(WIDTH))
        if (block + 1) % FULL_ATTENTION_INTERVAL == 0:
            # attn_q holds the query and its output gate, head by head
            writer.add_tensor(prefix + "attn_q.weight", weights(HEADS * HEAD_DIM * 2, WIDTH))
            writer.add_tensor(prefix + "attn_k.weight", weights(KV_HEADS * HEAD_DIM, WIDTH))
            writer.add_tensor(prefix + "attn_v.weight", weights(KV_HEADS * HEAD_DIM, WIDTH))
            writer.add_tensor(prefix + "attn_output.weight", weights(WIDTH, HEADS * HEAD_DIM))
            writer.add_tensor(prefix + "attn_q_norm.weight", ones(HEAD_DIM))
            writer.add_tensor(prefix + "attn_k_norm.weight", ones(HEAD_DIM))
        else:
            writer.add_tensor(prefix + "attn_qkv.weight", weights(key_dim * 2 + value_dim, WIDTH))
            writer.add_tensor(prefix + "attn_gate.weight", weights(value_dim, WIDTH))
            writer.add_tensor(prefix + "ssm_conv1d.weight", weights(key_dim * 2 + value_dim, SSM_CONV_KERNEL))
            writer.add_tensor(prefix + "ssm_dt.bias", weights(SSM_TIME_STEP_RANK))
            # -exp(A_log), negative as in a trained model: each step decays the state
            writer.add_tensor(prefix + "ssm_a", -np.exp(weights(SSM_TIME_STEP_RANK)))
            writer.add_tensor(prefix + "ssm_ba.weight", weights(SSM_TIME_STEP_RANK * 2, WIDTH))
            writer.add_tensor(prefix + "ssm_norm.weight", ones(SSM_STATE))
            writer.add_tensor(prefix + "ssm_out.weight", weights(WIDTH, value_dim))
        writer.add_tensor(prefix + "ffn_gate_inp.weight", weights(EXPERTS, WIDTH))
        writer.add_tensor(prefix + "ffn_gate_exps.weight", weights(EXPERTS, EXPERT_FEED_FORWARD, WIDTH))
        writer.add_tensor(prefix + "ffn_up_exps.weight", weights(EXPERTS, EXPERT_FEED_FORWARD, WIDTH))
        writer.add_tensor(prefix + "ffn_down_exps.weight", weights(EXPERTS, WIDTH, EXPERT_FEED_FORWARD))
        writer.add_tensor(prefix + "ffn_gate_inp_shexp.weight", weights(WIDTH))
        writer.add_tensor(prefix + "ffn_gate_shexp.weight", weights(SHARED_EXPERT_FEED_FORWARD, WIDTH))
        writer.add_tensor(prefix + "ffn_up_shexp.weight", weights(SHARED_EXPERT_FEED_FORWARD, WIDTH))
        writer.add_tensor(prefix + "ffn_down_shexp.weight", weights(WIDTH, SHARED_EXPERT_FEED_FORWARD))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(path)
    return sha256_file(str(path))


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"{generate(target)}  {target}")
