#!/usr/bin/env python3
"""Writes an F32 GGUF (format v3) of a Llama checkpoint directory (a Lattice `make-model` folder or a Hugging Face
LlamaForCausalLM: config.json + model.safetensors or model.safetensors.index.json; f32, bf16 or f16 tensors, all
written as f32), so llama.cpp runs the same weights as `lattice` (scripts/bench-llamacpp.mjs times it).

What the file holds, as llama.cpp's convert_hf_to_gguf.py writes it for LlamaModel:
- tensors token_embd, blk.N.{attn_norm,attn_q,attn_k,attn_v,attn_output,ffn_norm,ffn_gate,ffn_up,ffn_down},
  output_norm and output (absent when the embeddings are tied; llama.cpp then reuses token_embd). GGUF lists
  dimensions fastest-first, so a [rows, cols] weight is stored with dims (cols, rows) and the same bytes.
- attn_q and attn_k with their rows permuted within each head: Hugging Face rotates the pair (i, i + d/2) of a
  head's d dimensions (rotate_half), llama.cpp's LLAMA rope the pair (2i, 2i + 1); row h*d + 2i + j of the
  GGUF weight is row h*d + j*d/2 + i of the checkpoint. q.k is unchanged, since both get the same permutation.
- the llama.* hyperparameters (context_length, embedding_length, block_count, feed_forward_length,
  attention.head_count / head_count_kv / key_length / value_length / layer_norm_rms_epsilon,
  rope.freq_base, rope.dimension_count, vocab_size) and general.file_type 0 (all F32).
- a tokenizer (tokenizer.ggml.model "llama"): a checkpoint's tokenizer.json when it is Llama's byte-fallback BPE
  with exactly vocab_size pieces (scores = -merge rank, so llama.cpp's SPM merges in the same order);
  otherwise (`make-model` writes none) a PLACEHOLDER of vocab_size pieces: <unk>, <s>, </s>, the 256 byte
  tokens <0x00>..<0xFF>, then filler pieces "<filler-N>". It only lets llama.cpp load the model for timing
  and token-id runs; text tokenized with it means nothing.
Only plain Llama is converted: rope_scaling, attention/MLP biases and other architectures are refused.
Pure Python (no numpy, no gguf package); a 160M-parameter model converts in well under a minute.
usage: convert_to_gguf.py MODEL_DIR OUT.gguf"""
import array
import json
import math
import mmap
import os
import struct
import sys

GGUF_ALIGNMENT = 32
GGML_TYPE_F32 = 0
# GGUF metadata value types (gguf.h: enum gguf_type).
T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY = 4, 5, 6, 7, 8, 9
# llama.cpp token types (llama.h: enum llama_token_type).
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_BYTE = 1, 2, 3, 6


class ConvertError(Exception):
    pass


def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    arch = (c.get("architectures") or ["?"])[0]
    if arch != "LlamaForCausalLM":
        raise ConvertError(f"architecture {arch} is not converted (only LlamaForCausalLM)")
    if c.get("rope_scaling"):
        raise ConvertError(f"rope_scaling {c['rope_scaling']} is not converted (only unscaled RoPE)")
    if c.get("attention_bias") or c.get("mlp_bias"):
        raise ConvertError("attention or MLP biases are not converted")
    missing = [k for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                           "num_attention_heads") if k not in c]
    if missing:
        raise ConvertError(f"config.json has no {', '.join(missing)}")
    heads = c["num_attention_heads"]
    c.setdefault("num_key_value_heads", heads)
    c.setdefault("head_dim", c["hidden_size"] // heads)
    if c["head_dim"] % 2:
        raise ConvertError(f"head_dim {c['head_dim']} is odd; RoPE pairs need an even one")
    return c


class Checkpoint:
    """The tensors of model.safetensors (or of the shards its index names), memory-mapped."""

    def __init__(self, model_dir):
        index = os.path.join(model_dir, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                files = sorted(set(json.load(f)["weight_map"].values()))
        else:
            files = ["model.safetensors"]
        self.entries = {}  # name -> (mmap, dtype, shape, begin, end)
        for name in files:
            with open(os.path.join(model_dir, name), "rb") as f:
                m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            header_len = struct.unpack_from("<Q", m, 0)[0]
            header = json.loads(m[8:8 + header_len])
            for key, t in header.items():
                if key != "__metadata__":
                    begin, end = t["data_offsets"]
                    self.entries[key] = (m, t["dtype"], t["shape"], 8 + header_len + begin, 8 + header_len + end)

    def shape(self, name):
        if name not in self.entries:
            raise ConvertError(f"the checkpoint has no tensor {name}")
        return self.entries[name][2]

    def f32_bytes(self, name):
        """The tensor as little-endian f32 bytes, row-major."""
        m, dtype, _, begin, end = self.entries[name]
        raw = m[begin:end]
        if dtype == "F32":
            return raw
        if dtype == "BF16":  # bf16 is the top half of an f32: put its two bytes above two zero bytes
            out = bytearray(2 * len(raw))
            out[2::4] = raw[0::2]
            out[3::4] = raw[1::2]
            return bytes(out)
        if dtype == "F16":
            out = array.array("f")
            step = 1 << 20
            for i in range(0, len(raw), 2 * step):
                chunk = raw[i:i + 2 * step]
                out.extend(struct.unpack(f"<{len(chunk) // 2}e", chunk))
            return out.tobytes()
        raise ConvertError(f"tensor {name} has dtype {dtype} (f32, bf16 or f16 are converted)")


def rope_permute_rows(data, n_heads, head_dim, row_bytes):
    """Reorders the rows of a q or k projection from rotate_half to llama.cpp's adjacent-pair RoPE layout."""
    half = head_dim // 2
    out = bytearray(len(data))
    for h in range(n_heads):
        for i in range(half):
            for j in range(2):
                src = (h * head_dim + j * half + i) * row_bytes
                dst = (h * head_dim + 2 * i + j) * row_bytes
                out[dst:dst + row_bytes] = data[src:src + row_bytes]
    return bytes(out)


def tensor_plan(c, ckpt):
    """(gguf name, checkpoint name, rope heads or 0) in file order."""
    plan = [("token_embd.weight", "model.embed_tokens.weight", 0)]
    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        plan += [
            (f"blk.{n}.attn_norm.weight", p + "input_layernorm.weight", 0),
            (f"blk.{n}.attn_q.weight", p + "self_attn.q_proj.weight", c["num_attention_heads"]),
            (f"blk.{n}.attn_k.weight", p + "self_attn.k_proj.weight", c["num_key_value_heads"]),
            (f"blk.{n}.attn_v.weight", p + "self_attn.v_proj.weight", 0),
            (f"blk.{n}.attn_output.weight", p + "self_attn.o_proj.weight", 0),
            (f"blk.{n}.ffn_norm.weight", p + "post_attention_layernorm.weight", 0),
            (f"blk.{n}.ffn_gate.weight", p + "mlp.gate_proj.weight", 0),
            (f"blk.{n}.ffn_up.weight", p + "mlp.up_proj.weight", 0),
            (f"blk.{n}.ffn_down.weight", p + "mlp.down_proj.weight", 0),
        ]
    plan.append(("output_norm.weight", "model.norm.weight", 0))
    if "lm_head.weight" in ckpt.entries:
        plan.append(("output.weight", "lm_head.weight", 0))
    elif not c.get("tie_word_embeddings", False):
        raise ConvertError("the checkpoint has no lm_head.weight and tie_word_embeddings is false")
    for _, src, heads in plan:
        shape = ckpt.shape(src)
        if heads and shape[0] != heads * c["head_dim"]:
            raise ConvertError(f"{src} has {shape[0]} rows, expected {heads} heads x {c['head_dim']}")
    return plan


def tokenizer_json_vocab(model_dir, vocab_size):
    """(pieces, scores, types) from a Llama byte-fallback BPE tokenizer.json, or None when there is none that fits."""
    path = os.path.join(model_dir, "tokenizer.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        tok = json.load(f)
    model = tok.get("model", {})
    if model.get("type") != "BPE" or not model.get("byte_fallback"):
        return None
    by_id = {i: piece for piece, i in model["vocab"].items()}
    special = {t["id"]: t["content"] for t in tok.get("added_tokens", []) if t.get("special")}
    by_id.update(special)
    if sorted(by_id) != list(range(vocab_size)):
        return None
    merged_rank = {}
    for rank, merge in enumerate(model.get("merges", [])):
        a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
        merged_rank.setdefault(a + b, rank)
    pieces = [by_id[i] for i in range(vocab_size)]
    scores = [-float(merged_rank.get(p, 0)) for p in pieces]
    types = []
    for i, p in enumerate(pieces):
        if p == model.get("unk_token"):
            types.append(TOKEN_UNKNOWN)
        elif i in special:
            types.append(TOKEN_CONTROL)
        elif len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
            types.append(TOKEN_BYTE)
        else:
            types.append(TOKEN_NORMAL)
    return pieces, scores, types


def placeholder_vocab(vocab_size):
    """Timing-only SPM vocabulary: specials, 256 byte tokens, fillers."""
    if vocab_size < 3 + 256:
        raise ConvertError(f"vocab_size {vocab_size} is too small for the placeholder vocabulary (needs 259)")
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL] + [TOKEN_BYTE] * 256
    fillers = vocab_size - len(pieces)
    pieces += [f"<filler-{i}>" for i in range(fillers)]
    types += [TOKEN_NORMAL] * fillers
    return pieces, [0.0] * vocab_size, types


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, vtype, value):
    out = gguf_string(key) + struct.pack("<I", vtype)
    if vtype == T_STRING:
        return out + gguf_string(value)
    if vtype == T_ARRAY:
        etype, items = value
        out += struct.pack("<IQ", etype, len(items))
        if etype == T_STRING:
            return out + b"".join(gguf_string(s) for s in items)
        return out + struct.pack(f"<{len(items)}{'f' if etype == T_FLOAT32 else 'i'}", *items)
    return out + struct.pack({T_UINT32: "<I", T_INT32: "<i", T_FLOAT32: "<f", T_BOOL: "<?"}[vtype], value)


def metadata(c, model_dir, tokenizer):
    pieces, scores, types = tokenizer
    kv = [
        ("general.architecture", T_STRING, "llama"),
        ("general.name", T_STRING, os.path.basename(os.path.abspath(model_dir))),
        ("general.file_type", T_UINT32, 0),
        ("llama.vocab_size", T_UINT32, c["vocab_size"]),
        ("llama.context_length", T_UINT32, c.get("max_position_embeddings", 2048)),
        ("llama.embedding_length", T_UINT32, c["hidden_size"]),
        ("llama.block_count", T_UINT32, c["num_hidden_layers"]),
        ("llama.feed_forward_length", T_UINT32, c["intermediate_size"]),
        ("llama.attention.head_count", T_UINT32, c["num_attention_heads"]),
        ("llama.attention.head_count_kv", T_UINT32, c["num_key_value_heads"]),
        ("llama.attention.key_length", T_UINT32, c["head_dim"]),
        ("llama.attention.value_length", T_UINT32, c["head_dim"]),
        ("llama.attention.layer_norm_rms_epsilon", T_FLOAT32, c.get("rms_norm_eps", 1e-5)),
        ("llama.rope.freq_base", T_FLOAT32, c.get("rope_theta", 10000.0)),
        ("llama.rope.dimension_count", T_UINT32, c["head_dim"]),
        ("tokenizer.ggml.model", T_STRING, "llama"),
        ("tokenizer.ggml.tokens", T_ARRAY, (T_STRING, pieces)),
        ("tokenizer.ggml.scores", T_ARRAY, (T_FLOAT32, scores)),
        ("tokenizer.ggml.token_type", T_ARRAY, (T_INT32, types)),
        ("tokenizer.ggml.bos_token_id", T_UINT32, c.get("bos_token_id", 1)),
        ("tokenizer.ggml.eos_token_id", T_UINT32, c.get("eos_token_id", 2)),
        ("tokenizer.ggml.unknown_token_id", T_UINT32, 0),
        ("tokenizer.ggml.add_bos_token", T_BOOL, True),
    ]
    return kv


def pad(n):
    return (GGUF_ALIGNMENT - n % GGUF_ALIGNMENT) % GGUF_ALIGNMENT


def convert(model_dir, out_path):
    if sys.byteorder != "little":
        raise ConvertError("this converter writes little-endian GGUF from a little-endian host only")
    c = load_config(model_dir)
    ckpt = Checkpoint(model_dir)
    plan = tensor_plan(c, ckpt)
    tokenizer = tokenizer_json_vocab(model_dir, c["vocab_size"])
    placeholder = tokenizer is None
    if placeholder:
        tokenizer = placeholder_vocab(c["vocab_size"])
    kv = metadata(c, model_dir, tokenizer)

    header = b"GGUF" + struct.pack("<IQQ", 3, len(plan), len(kv)) + b"".join(gguf_kv(*e) for e in kv)
    offset = 0
    for name, src, _ in plan:
        shape = ckpt.shape(src)
        header += gguf_string(name) + struct.pack("<I", len(shape))
        header += b"".join(struct.pack("<Q", d) for d in reversed(shape))
        header += struct.pack("<IQ", GGML_TYPE_F32, offset)
        n = 4 * math.prod(shape)
        offset += n + pad(n)
    tmp = out_path + ".part"
    with open(tmp, "wb") as f:
        f.write(header + bytes(pad(len(header))))
        for name, src, heads in plan:
            data = ckpt.f32_bytes(src)
            if heads:
                data = rope_permute_rows(data, heads, c["head_dim"], 4 * ckpt.shape(src)[1])
            f.write(data)
            f.write(bytes(pad(len(data))))
    os.replace(tmp, out_path)
    params = sum(math.prod(ckpt.shape(src)) for _, src, _ in plan)
    print(f"convert_to_gguf: wrote {out_path}: {len(plan)} f32 tensors, {params / 1e6:.1f}M parameters, "
          f"{'PLACEHOLDER vocabulary (timing only)' if placeholder else 'vocabulary from tokenizer.json'} "
          f"of {c['vocab_size']} tokens", file=sys.stderr)


def main():
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    try:
        convert(sys.argv[1], sys.argv[2])
    except (ConvertError, OSError, ValueError, KeyError) as e:
        print(f"convert_to_gguf: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
