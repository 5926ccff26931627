#!/usr/bin/env python3
"""`--dummy-weights` runs a model from its config.json alone (as the GPU benchmarks do with Llama-3-8B): on a folder
holding nothing but tiny-llama's config.json, `lattice generate` generates deterministic random weights (saying
so), produces the requested tokens, gives the same tokens twice, and without the flag names the missing
checkpoint."""
import json
import shutil
import subprocess
import sys
import tempfile

lattice, data = sys.argv[1], sys.argv[2]
failures = 0


def check(ok, message):
    global failures
    if not ok:
        print(message)
        failures += 1


with tempfile.TemporaryDirectory() as model:
    shutil.copy(f"{data}/tiny-llama/f32/config.json", model)
    args = [lattice, "generate", "--model", model, "--device", "cpu", "--prompt-ids", "1,2,3,4", "--max-tokens", "12",
            "--temperature", "0", "--ignore-eos", "--json"]
    runs = [subprocess.run(args + ["--dummy-weights"], capture_output=True, text=True, timeout=120) for _ in range(2)]
    for run in runs:
        check(run.returncode == 0, f"dummy-weight run failed: {run.stderr}")
        check("generating weights" in run.stderr, f"no progress line for generated weights: {run.stderr}")
    if failures == 0:
        first, second = (json.loads(run.stdout) for run in runs)
        check(len(first["tokens"]) == 12 and first["finish_reason"] == "length", f"bad output {first}")
        check(all(0 <= t < 512 for t in first["tokens"]), f"token ids outside the vocabulary: {first['tokens']}")
        check(first["tokens"] == second["tokens"], f"two runs differ: {first['tokens']} vs {second['tokens']}")
    missing = subprocess.run(args, capture_output=True, text=True, timeout=120)
    check(missing.returncode != 0 and "safetensors" in missing.stderr,
          f"a config-only folder without --dummy-weights should name the missing checkpoint: {missing.stderr}")
print(f"{4 - min(failures, 4)} passed, {min(failures, 4)} failed")
sys.exit(1 if failures else 0)
