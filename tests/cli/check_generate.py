#!/usr/bin/env python3
"""End-to-end check of `lattice generate --json` on the tiny-llama fixture: the greedy continuations of the
clear-margin cases (5-8) must equal the float64 reference's, and logprobs must be well-formed."""
import json
import subprocess
import sys
import tempfile

lattice, data = sys.argv[1], sys.argv[2]
expected = json.load(open(f"{data}/tiny-llama/expected.json"))
cases = [5, 6, 7, 8]
with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
    for c in cases:
        f.write(json.dumps({"id": f"case{c}", "prompt_ids": expected["cases"][c]["prompt"],
                            "max_tokens": 24, "temperature": 0, "ignore_eos": True}) + "\n")
    requests = f.name
out = subprocess.run([lattice, "generate", "--model", f"{data}/tiny-llama/f32", "--requests", requests,
                      "--json", "--logprobs", "3"], capture_output=True, text=True, check=True)
lines = [json.loads(line) for line in out.stdout.splitlines()]
assert len(lines) == len(cases), out.stdout
failures = 0
for c, got in zip(cases, lines):
    want = expected["cases"][c]["greedy"]
    if got["id"] != f"case{c}" or got["tokens"] != want or got["finish_reason"] != "length":
        print(f"case {c}: got {got['tokens']} ({got['finish_reason']}), want {want}")
        failures += 1
    if got["prompt_tokens"] != len(expected["cases"][c]["prompt"]):
        print(f"case {c}: prompt_tokens {got['prompt_tokens']}")
        failures += 1
    for step, (token, top) in enumerate(zip(got["tokens"], got["logprobs"])):
        # Greedy: the chosen token is the most likely one, and log-probabilities are sorted and <= 0.
        if len(top) != 3 or top[0]["token"] != token or any(a["logprob"] < b["logprob"] for a, b in zip(top, top[1:])) \
                or top[0]["logprob"] > 0:
            print(f"case {c} step {step}: bad logprobs {top}")
            failures += 1
print(f"{len(cases) - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
