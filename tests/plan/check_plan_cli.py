#!/usr/bin/env python3
"""lattice plan end to end: Llama 8B/70B/405B shapes on 1-32 H200s as JSON (every layout within the GPU count,
what cannot fit marked, a recommendation among the rest), the table, bad flags as errors, and the --plot PNG
(skipped, with the reason, where matplotlib is missing).

usage: check_plan_cli.py LATTICE SCRIPTS_MODELS_DIR
"""
import json
import os
import subprocess
import sys
import tempfile

lattice, models = sys.argv[1], sys.argv[2]


def plan(*args, ok=True):
    p = subprocess.run([lattice, "plan", *args], capture_output=True, text=True)
    assert (p.returncode == 0) == ok, f"lattice plan {' '.join(args)}: exit {p.returncode}\n{p.stdout}{p.stderr}"
    return p


weights_gib = {"llama-3-8b": 14.96, "llama-3-70b": 131.4, "llama-3.1-405b": 756.3}  # parameters x 2 bytes
for model, gib in weights_gib.items():
    for gpus in (1, 2, 4, 8, 16, 32):
        j = json.loads(plan("--model", f"{models}/{model}", "--gpus", str(gpus), "--gpu", "h200", "--json").stdout)
        layouts = j["layouts"]
        assert layouts, (model, gpus)
        for l in layouts:
            assert l["tp"] * l["pp"] * l["dp"] <= gpus, l
            shard = l["memory_gib"]["weights"]
            assert shard >= gib / (l["tp"] * l["pp"]) * 0.99, (model, l)  # the largest stage holds at least its share
            if shard + l["memory_gib"]["workspace"] > 0.9 * 140.4:
                assert not l["fits"] and "does not fit" in l["note"], (model, l)
            if l["fits"]:
                assert l["tpot_ms"] > 0 and l["ttft_ms"] > 0 and l["output_tokens_per_s"] > 0, l
        fitting = [i for i, l in enumerate(layouts) if l["fits"] and not l["note"]]
        if fitting:
            best = j["recommended"]
            assert best in fitting, (model, gpus, best)
            top = max(layouts[i]["output_tokens_per_s"] for i in fitting)
            assert layouts[best]["output_tokens_per_s"] == top
        else:
            assert j["recommended"] == -1
    print(f"{model}: 1-32 GPUs planned")

# 405B needs at least 8 H200s for 756 GiB of bf16 weights.
j = json.loads(plan("--model", f"{models}/llama-3.1-405b", "--gpus", "4", "--json").stdout)
assert not any(l["fits"] for l in j["layouts"]) and j["recommended"] == -1

table = plan("--model", f"{models}/llama-3-70b/config.json", "--gpus", "8", "--latency-slo-ms", "30").stdout
assert "recommended: tp" in table and "bottleneck" in table, table
assert "\nx " in table, table  # tp1 pp1 cannot hold 70B

for bad, message in [(["--batch", "4", "--rate", "2"], "give --batch or --rate, not both"),
                     (["--gpu", "tpu"], "no hardware profile 'tpu'"),
                     (["--interconnect", "carrier-pigeon"], "no interconnect 'carrier-pigeon'"),
                     (["--objective", "cost"], "--objective must be throughput or latency")]:
    err = plan("--model", f"{models}/llama-3-8b", "--gpus", "2", *bad, ok=False).stderr
    assert message in err, (bad, err)

try:
    import matplotlib  # noqa: F401
except ImportError:
    print("skipped --plot: python3-matplotlib is not installed (scripts/setup installs it)")
    sys.exit(0)
os.environ["LATTICE_PYTHON"] = sys.executable  # the interpreter that has matplotlib
with tempfile.TemporaryDirectory() as tmp:
    png = os.path.join(tmp, "plan.png")
    plan("--model", f"{models}/llama-3-70b", "--gpus", "16", "--plot", png)
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
print("--plot wrote a PNG")
