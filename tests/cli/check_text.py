#!/usr/bin/env python3
"""Text in, text out through the CLI on the tiny-llama fixture: a --prompt is tokenized exactly as
`lattice tokenize` does, generates the same tokens as the equivalent --prompt-ids, and its "text" is what
`lattice detokenize` makes of those tokens."""
import json
import subprocess
import sys

lattice, data = sys.argv[1], sys.argv[2]
model = f"{data}/tiny-llama/f32"
prompt = "Hello world, the GPU"


def run(*args):
    return subprocess.run([lattice, *args], capture_output=True, text=True, check=True).stdout


ids = [int(x) for x in run("tokenize", "--model", model, "--text", prompt).split(",")]
common = ["--model", model, "--max-tokens", "12", "--temperature", "0", "--ignore-eos", "--json"]
by_text = json.loads(run("generate", "--prompt", prompt, *common))
by_ids = json.loads(run("generate", "--prompt-ids", ",".join(map(str, ids)), *common))
detok = run("detokenize", "--model", model, "--ids", ",".join(map(str, by_text["tokens"])))
failures = []
if by_text["prompt_tokens"] != len(ids):
    failures.append(f"prompt_tokens {by_text['prompt_tokens']} != {len(ids)}")
if by_text["tokens"] != by_ids["tokens"]:
    failures.append(f"tokens differ: {by_text['tokens']} vs {by_ids['tokens']}")
if detok.rstrip("\n") != by_text["text"]:
    failures.append(f"text {by_text['text']!r} != detokenize {detok!r}")
for f in failures:
    print(f)
print(f"{3 - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
