#!/usr/bin/env python3
"""scripts/convert_to_gguf.py on tiny-llama, read back with this file's own GGUF v3 reader: the llama.*
hyperparameters equal config.json; every tensor has llama.cpp's name, F32 type and the checkpoint's shape listed
fastest-first; every tensor but attn_q/attn_k holds exactly the checkpoint's values (bf16 ones widened: the bf16
bits are the top half of the f32); and attn_q/attn_k are checked by what they must preserve: attention scores.
For every layer and head, q.k after Hugging Face's rotate-half RoPE (checkpoint weights) equals q.k after
llama.cpp's adjacent-pair RoPE (GGUF weights), in float64, to 1e-9 of the scores' scale (the same f32 products
summed in another order differ by ~1e-15); the unpermuted weights under llama.cpp's RoPE must miss by more than
1e-3, which shows the check can fail. A checkpoint without tokenizer.json gets the placeholder vocabulary.
(That llama.cpp itself computes tiny-llama's reference logits from this file is scripts/check-gguf-llamacpp.mjs,
which needs node-llama-cpp.) usage: check_convert_to_gguf.py REPO_ROOT"""
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

root = sys.argv[1]
data = os.path.join(root, "tests", "data", "tiny-llama")
failures = 0


def check(ok, message):
    global failures
    if not ok:
        print(message)
        failures += 1


def read_gguf(path):
    """(metadata dict, {name: (dims, floats)}) of an F32 GGUF v3 file."""
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def string():
        nonlocal pos
        n = take("Q")
        pos += n
        return buf[pos - n:pos].decode("utf-8")

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(vtype):
        if vtype == 8:
            return string()
        if vtype == 9:
            etype, n = take("I"), take("Q")
            return [value(etype) for _ in range(n)]
        return take(scalar[vtype])

    assert buf[:4] == b"GGUF", "bad magic"
    pos = 4
    version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    assert version == 3, f"GGUF version {version}"
    meta = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take("I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("Q") for _ in range(take("I"))]
        infos.append((name, dims, take("I"), take("Q")))
    align = meta.get("general.alignment", 32)
    base = (pos + align - 1) // align * align
    tensors = {}
    for name, dims, ttype, offset in infos:
        assert ttype == 0, f"{name} has ggml type {ttype}, not F32"
        n = math.prod(dims)
        tensors[name] = (dims, struct.unpack_from(f"<{n}f", buf, base + offset))
    return meta, tensors


def read_safetensors(path):
    """{name: (shape, floats)}; bf16 widened by placing its bits above 16 zero bits."""
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack_from("<Q", buf, 0)[0]
    out = {}
    for name, t in json.loads(buf[8:8 + n]).items():
        if name == "__metadata__":
            continue
        raw = buf[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]]
        if t["dtype"] == "F32":
            vals = struct.unpack(f"<{len(raw) // 4}f", raw)
        else:
            vals = tuple(struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2))
        out[name] = (t["shape"], vals)
    return out


def convert(model_dir, out):
    run = subprocess.run([sys.executable, os.path.join(root, "scripts", "convert_to_gguf.py"), model_dir, out],
                         capture_output=True, text=True, timeout=120)
    check(run.returncode == 0, f"convert_to_gguf.py {model_dir} failed: {run.stderr}")
    return run


def rope_scores(w_q, w_k, x_m, x_n, m, n, head_dim, n_heads, n_kv, adjacent):
    """q_h(x_m at m) . k_g(x_n at n) for each head h and its KV head g, with weights [rows][cols] and RoPE either
    rotate-half (pairs i, i + d/2) or adjacent (pairs 2i, 2i + 1), base 10000."""
    def project(w, x, rows):
        return [sum(a * b for a, b in zip(w[r], x)) for r in rows]

    def rotate(v, pos):
        out = list(v)
        for i in range(head_dim // 2):
            a, b = (2 * i, 2 * i + 1) if adjacent else (i, i + head_dim // 2)
            theta = pos * 10000.0 ** (-2.0 * i / head_dim)
            c, s = math.cos(theta), math.sin(theta)
            out[a], out[b] = v[a] * c - v[b] * s, v[a] * s + v[b] * c
        return out

    scores = []
    for h in range(n_heads):
        g = h // (n_heads // n_kv)
        q = rotate(project(w_q, x_m, range(h * head_dim, (h + 1) * head_dim)), m)
        k = rotate(project(w_k, x_n, range(g * head_dim, (g + 1) * head_dim)), n)
        scores.append(sum(a * b for a, b in zip(q, k)))
    return scores


def rows(dims, vals):
    cols = dims[0]
    return [vals[r * cols:(r + 1) * cols] for r in range(len(vals) // cols)]


def check_model(model_dir, gguf_path):
    config = json.load(open(os.path.join(model_dir, "config.json")))
    meta, tensors = read_gguf(gguf_path)
    ckpt = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    layers, heads, kv = config["num_hidden_layers"], config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config["hidden_size"] // heads
    expect = {"general.architecture": "llama", "llama.block_count": layers,
              "llama.embedding_length": config["hidden_size"], "llama.feed_forward_length": config["intermediate_size"],
              "llama.attention.head_count": heads, "llama.attention.head_count_kv": kv,
              "llama.rope.dimension_count": head_dim, "llama.context_length": config["max_position_embeddings"],
              "general.file_type": 0}
    for key, want in expect.items():
        check(meta.get(key) == want, f"{gguf_path}: {key} = {meta.get(key)}, expected {want}")
    for key, want in (("llama.rope.freq_base", config["rope_theta"]),
                      ("llama.attention.layer_norm_rms_epsilon", config["rms_norm_eps"])):
        check(abs(meta.get(key, -1) - want) <= 1e-7 * want, f"{gguf_path}: {key} = {meta.get(key)}, expected {want}")
    check(len(meta.get("tokenizer.ggml.tokens", [])) == config["vocab_size"], f"{gguf_path}: token count")

    names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    parts = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    for n in range(layers):
        names.update({f"blk.{n}.{g}.weight": f"model.layers.{n}.{h}.weight" for g, h in parts.items()})
    check(set(tensors) == set(names), f"{gguf_path}: tensors {sorted(set(tensors) ^ set(names))} differ")
    for g, h in names.items():
        if g not in tensors:
            continue
        (dims, vals), (shape, ref) = tensors[g], ckpt[h]
        check(dims == list(reversed(shape)), f"{g}: dims {dims}, checkpoint shape {shape}")
        if ".attn_q." not in g and ".attn_k." not in g:
            check(vals == ref, f"{g}: values differ from {h}")

    rng = random.Random(0)
    for n in range(layers):
        x_m = [rng.uniform(-1, 1) for _ in range(config["hidden_size"])]
        x_n = [rng.uniform(-1, 1) for _ in range(config["hidden_size"])]
        hf_q, hf_k = (rows(list(reversed(ckpt[f"model.layers.{n}.self_attn.{p}_proj.weight"][0])),
                           ckpt[f"model.layers.{n}.self_attn.{p}_proj.weight"][1]) for p in "qk")
        gg_q, gg_k = (rows(*tensors[f"blk.{n}.attn_{p}.weight"]) for p in "qk")
        m, pos_n = 37, 5
        want = rope_scores(hf_q, hf_k, x_m, x_n, m, pos_n, head_dim, heads, kv, adjacent=False)
        got = rope_scores(gg_q, gg_k, x_m, x_n, m, pos_n, head_dim, heads, kv, adjacent=True)
        unpermuted = rope_scores(hf_q, hf_k, x_m, x_n, m, pos_n, head_dim, heads, kv, adjacent=True)
        scale = max(abs(s) for s in want)
        err = max(abs(a - b) for a, b in zip(got, want))
        miss = max(abs(a - b) for a, b in zip(unpermuted, want))
        check(err <= 1e-9 * scale, f"layer {n}: attention scores differ by {err:.3g} (scale {scale:.3g})")
        check(miss > 1e-3 * scale, f"layer {n}: unpermuted weights match too ({miss:.3g}): the check cannot fail")
    return meta


with tempfile.TemporaryDirectory() as tmp:
    for variant in ("f32", "bf16"):
        out = os.path.join(tmp, f"{variant}.gguf")
        convert(os.path.join(data, variant), out)
        if os.path.exists(out):
            meta = check_model(os.path.join(data, variant), out)
            vocab = json.load(open(os.path.join(data, variant, "tokenizer.json")))["model"]["vocab"]
            check(meta["tokenizer.ggml.tokens"] == sorted(vocab, key=vocab.get),
                  f"{variant}: the vocabulary is not tokenizer.json's pieces in id order")
    bare = os.path.join(tmp, "bare")
    os.mkdir(bare)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(data, "f32", name), bare)
    run = convert(bare, os.path.join(tmp, "bare.gguf"))
    check("PLACEHOLDER" in run.stderr, f"no placeholder notice: {run.stderr}")
    tokens = read_gguf(os.path.join(tmp, "bare.gguf"))[0]["tokenizer.ggml.tokens"]
    check(tokens[:4] == ["<unk>", "<s>", "</s>", "<0x00>"] and tokens[258] == "<0xFF>" and len(set(tokens)) == 512,
          f"placeholder vocabulary: {tokens[:5]} ... {tokens[255:260]}")
    json.dump({**json.load(open(os.path.join(data, "f32", "config.json"))), "rope_scaling": {"type": "llama3"}},
              open(os.path.join(bare, "config.json"), "w"))
    run = subprocess.run([sys.executable, os.path.join(root, "scripts", "convert_to_gguf.py"), bare,
                          os.path.join(tmp, "scaled.gguf")], capture_output=True, text=True, timeout=60)
    check(run.returncode == 1 and "rope_scaling" in run.stderr, f"rope_scaling not refused: {run.stderr}")

print("FAIL" if failures else "ok")
sys.exit(1 if failures else 0)
