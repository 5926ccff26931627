#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/seed-*) from tests/data: small valid
inputs and near-valid variants, each well under the targets' 64 KiB input limit. Crash regressions
(corpus/<target>/crash-*) are added by hand and never rewritten. Run from anywhere: tests/fuzz/make_corpus.py"""
import json
import pathlib
import struct

fuzz = pathlib.Path(__file__).resolve().parent
data = fuzz.parent / "data"


def write(target, name, content):
    path = fuzz / "corpus" / target / f"seed-{name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


# safetensors: the 8-byte header length, the JSON header, the data.
def safetensors(tensors, metadata=None, pad=b""):
    header, blob = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(payload)]}
        blob += payload
    text = json.dumps(header).encode() + pad
    return struct.pack("<Q", len(text)) + text + blob


f32 = lambda *v: struct.pack(f"<{len(v)}f", *v)
write("safetensors_header", "one-f32", safetensors({"w": ("F32", [2, 2], f32(1, 2, 3, 4))}))
write("safetensors_header", "mixed", safetensors({"a": ("BF16", [3], b"\x80\x3f" * 3), "b": ("I64", [1], b"\x01" + b"\0" * 7),
                                                  "c": ("F16", [0, 4], b""), "d": ("I32", [], b"\0" * 4)},
                                                 metadata={"format": "pt"}, pad=b"   "))
write("safetensors_header", "empty", safetensors({}))
good = safetensors({"x": ("F32", [4], f32(0, 1, 2, 3)), "y": ("F32", [1], f32(5))})
write("safetensors_header", "truncated", good[:-3])
overlap = json.dumps({"p": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "q": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode()
write("safetensors_header", "overlap", struct.pack("<Q", len(overlap)) + overlap + b"\0" * 12)
with open(data / "tiny-llama/f32/model.safetensors", "rb") as f:  # the fixture's header, data cut to 4 KiB
    n = struct.unpack("<Q", f.read(8))[0]
    write("safetensors_header", "tiny-llama-header", struct.pack("<Q", n) + f.read(n) + b"\0" * 4096)

# config.json: the fixture and one of each architecture's features.
base = json.loads((data / "tiny-llama/f32/config.json").read_text())
write("model_config", "tiny-llama", json.dumps(base, indent=2))
write("model_config", "mistral", json.dumps({**base, "architectures": ["MistralForCausalLM"], "sliding_window": 64}))
write("model_config", "qwen2", json.dumps({**base, "architectures": ["Qwen2ForCausalLM"], "sliding_window": 4096,
                                           "use_sliding_window": False, "tie_word_embeddings": True}))
write("model_config", "qwen3-llama3-rope", json.dumps({**base, "architectures": ["Qwen3ForCausalLM"], "eos_token_id": [2, 3],
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 256}}))
write("model_config", "minimal", json.dumps({k: base[k] for k in ["architectures", "vocab_size", "hidden_size",
    "intermediate_size", "num_hidden_layers", "num_attention_heads", "max_position_embeddings"]}))


# tokenizer.json: each fixture's pipeline over its first 300 vocabulary entries and the merges among them,
# then NUL and its tokenizer_config.json (without the chat template).
def small_tokenizer(name, keep=300):
    t = json.loads((data / f"tokenizers/{name}/tokenizer.json").read_text())
    vocab = t["model"]["vocab"]
    ids = sorted(vocab.values())[:keep]
    kept = {tok: i for tok, i in vocab.items() if i in set(ids)}
    merges = []
    for m in t["model"]["merges"]:
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in kept and b in kept and a + b in kept:
            merges.append(m)
    t["model"]["vocab"], t["model"]["merges"] = kept, merges
    t["added_tokens"] = [a for a in t["added_tokens"] if a["id"] < keep]
    config = json.loads((data / f"tokenizers/{name}/tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    config["added_tokens_decoder"] = {k: v for k, v in config.get("added_tokens_decoder", {}).items() if int(k) < keep}
    return json.dumps(t, ensure_ascii=False), json.dumps(config, ensure_ascii=False)


for name in ["gpt2", "mistral", "qwen3"]:
    tok, config = small_tokenizer(name)
    write("tokenizer", name, tok)
    write("tokenizer", f"{name}-with-config", tok + "\0" + config)
write("tokenizer", "bpe-minimal", json.dumps({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
                                              "added_tokens": [{"id": 3, "content": "<s>", "special": True}]}))

# OpenAI request bodies.
requests = {
    "completion-text": {"model": "m", "prompt": "Hello", "max_tokens": 16, "temperature": 0},
    "completion-ids": {"prompt": [1, 2, 3], "max_tokens": 4, "logprobs": 2, "stop": ["\n", "."], "seed": 7, "n": 2,
                       "top_p": 0.9, "top_k": 5, "presence_penalty": 0.5, "frequency_penalty": 0.1,
                       "repetition_penalty": 1.1, "stream": True, "stream_options": {"include_usage": True}},
    "chat": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
             "max_tokens": 8, "logprobs": True, "top_logprobs": 3},
    "chat-tools": {"messages": [{"role": "user", "content": [{"type": "text", "text": "2+2?"}]},
                                {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function",
                                 "function": {"name": "add", "arguments": "{\"a\": 2}"}}]},
                                {"role": "tool", "tool_call_id": "c", "content": "4"}],
                   "tools": [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}],
                   "chat_template_kwargs": {"enable_thinking": False}, "add_generation_prompt": True},
}
for name, body in requests.items():
    write("openai_request", name, json.dumps(body))

# Chat templates: ChatML-like, the Qwen3 fixture's, and the constructs templates use.
qwen3 = json.loads((data / "tokenizers/qwen3/tokenizer_config.json").read_text())["chat_template"]
write("chat_template", "qwen3", qwen3)
write("chat_template", "chatml", "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
      "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
write("chat_template", "llama2", "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}[INST] {{ m.content | trim }} [/INST]"
      "{% elif m.role == 'assistant' %} {{ m.content }}{{ eos_token }}{% else %}{{ raise_exception('bad role ' ~ m.role) }}{% endif %}{% endfor %}")
write("chat_template", "features", "{%- set ns = namespace(n=0, last='') -%}{% macro show(x, sep=', ') %}{{ x | join(sep) }}{% endmacro %}"
      "{% for k, v in {'a': 1, 'b': [1, 2]}.items() if k != 'z' %}{{ loop.index }}:{{ k }}={{ v | tojson }}{% set ns.n = ns.n + 1 %}{% endfor %}"
      "{{ show(range(3) | list) }} {{ messages[-1].content[:5] | upper }} {{ 'x' if ns.n > 1 else 'y' }} {{ (7 // 2, 7 % 3, -3 | abs) }}"
      "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | list | length }}"
      "{% if tools is defined and tools is not none %}{{ tools | tojson(indent=2) }}{% endif %}{{ 'a,b'.split(',') }}")
write("chat_template", "with-variables", "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{{ tools | length }}\0"
      + json.dumps({"messages": [{"role": "user", "content": "Hi"}], "extra": {"tools": [{"name": "t"}]}}))
