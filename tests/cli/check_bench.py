#!/usr/bin/env python3
"""`lattice bench --batch-sizes` on the CPU (tiny-llama f32): one run per size on one loaded engine, in order, each
with the step count the scheduler must take (one prefill step of batch x input tokens, then output - 1 decode
steps), every step eager (no GPU, so no CUDA graphs), and the per-step timings consistent (host time within the
step time); and scripts/plot_bench.py draws it where matplotlib is installed (Debian's /usr/bin/python3 here).
`--profile`: each phase's step count over the measured iterations, the FLOPs it counts per op against the ones
computed here from config.json, and the op times adding up to no more than the phase's wall time.
usage: check_bench.py LATTICE DATA_DIR"""
import json
import os
import subprocess
import sys
import tempfile

lattice, data = sys.argv[1], sys.argv[2]
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, flush=True)


IN, OUT = 8, 4
cmd = [lattice, "bench", "--model", f"{data}/tiny-llama/f32", "--device", "cpu", "--batch-sizes", "1,3",
       "--input-len", str(IN), "--output-len", str(OUT), "--kv-cache-blocks", "64", "--json"]
p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=120)
check(p.returncode == 0, f"bench exit {p.returncode}: {p.stderr[-500:]}")
runs = json.loads(p.stdout)["runs"] if p.returncode == 0 else []
check([r["batch"] for r in runs] == [1, 3], f"runs for batch 1 and 3, got {[r['batch'] for r in runs]}")
for r in runs:
    b = r["batch"]
    # batch x 8 prompt tokens fit one step (--max-tokens-per-step 512); each later token is one decode step.
    check(r["steps"] == 1 + (OUT - 1), f"batch {b}: {r['steps']} steps, want {1 + OUT - 1}")
    check(r["cuda_graphs_off_reason"] == "cpu" and r["cuda_graph_count"] == 0, f"batch {b}: no graphs on the CPU")
    check(r["eager_steps"] == r["steps"] and r["graph_steps"] == 0 and r["cuda_graphs"] is False,
          f"batch {b}: every CPU step eager: {r['eager_steps']} eager, {r['graph_steps']} graph")
    check(r["decode_ms_per_step"] > 0 and r["output_tokens_per_s"] > 0, f"batch {b}: positive rates")
    step_ms = 1e3 * b * OUT / r["output_tokens_per_s"] / r["steps"]  # the run's wall time per step
    host_ms = r["host_build_ms_per_step"] + r["host_enqueue_ms_per_step"]
    check(0 < host_ms <= step_ms, f"batch {b}: host {host_ms:.4f} ms of a {step_ms:.4f} ms step")
    check(r["communication_ms_per_step"] == 0, f"batch {b}: one rank communicates nothing")
    check(0 < r["prefill_vs_sgemm"] and 0 < r["decode_vs_bandwidth"], f"batch {b}: ratios to the ceilings")

# --profile over 2 measured iterations of batch 2: the FLOPs per step of each GEMM and of attention, from the shapes.
cfg = json.load(open(f"{data}/tiny-llama/f32/config.json"))
h, L, V, I = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"], cfg["intermediate_size"]
hd, nh, nkv = cfg["head_dim"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
B, ITERS = 2, 2
prof = subprocess.run([lattice, "bench", "--model", f"{data}/tiny-llama/f32", "--device", "cpu", "--batch", str(B),
                       "--input-len", str(IN), "--output-len", str(OUT), "--kv-cache-blocks", "64", "--num-iters",
                       str(ITERS), "--num-iters-warmup", "0", "--profile", "--json"],
                      capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=120)
check(prof.returncode == 0, f"bench --profile exit {prof.returncode}: {prof.stderr[-500:]}")
if prof.returncode == 0:
    r = json.loads(prof.stdout)
    check(len(r["iterations"]) == ITERS, f"{len(r['iterations'])} iterations listed, want {ITERS}")
    per_token = {"qkv_proj": (nh + 2 * nkv) * hd * h, "o_proj": nh * hd * h, "gate_up_proj": 2 * I * h,
                 "down_proj": I * h}
    decode_steps = OUT - 1
    # Every sequence's new tokens attend causally: IN (IN + 1) / 2 pairs in prefill; decode step d sees IN + d.
    pairs = {"prefill": B * IN * (IN + 1) / 2, "decode": B * sum(IN + d for d in range(1, OUT)) / decode_steps}
    tokens = {"prefill": B * IN, "decode": B}
    for phase, steps in (("prefill", ITERS), ("decode", ITERS * decode_steps)):
        ph = r["profile"][phase]
        check(ph["steps"] == steps, f"{phase}: {ph['steps']} steps, want {steps}")
        want = {k: 2 * tokens[phase] * w * L for k, w in per_token.items()}
        want["lm_head"] = 2 * B * V * h
        want["attention"] = 4 * pairs[phase] * nh * hd * L
        for op, flops in want.items():
            got = ph["ops"].get(op, {}).get("gflop_per_step", 0) * 1e9
            check(abs(got - flops) <= 1e-9 * flops, f"{phase} {op}: {got} FLOPs per step, want {flops}")
        check(all(k not in ph["ops"] for k in ("communication", "moe_routing")), f"{phase}: no TP, no MoE: {ph['ops']}")
        op_ms = sum(o["ms_per_step"] for o in ph["ops"].values())
        check(all(o["ms_per_step"] > 0 for o in ph["ops"].values()), f"{phase}: every op it lists took time")
        check(abs(op_ms + ph["host"]["ms_per_step"] - ph["wall_ms_per_step"]) <= 1e-6 * ph["wall_ms_per_step"] + 1e-9,
              f"{phase}: ops {op_ms} ms + host {ph['host']['ms_per_step']} ms != wall {ph['wall_ms_per_step']} ms")

both = subprocess.run(cmd[:4] + ["--batch", "2", "--batch-sizes", "1"], capture_output=True, text=True, timeout=60)
check(both.returncode != 0 and "give --batch or --batch-sizes, not both" in both.stderr, "--batch with --batch-sizes")

if runs and subprocess.run(["/usr/bin/python3", "-c", "import matplotlib"], capture_output=True).returncode == 0:
    with tempfile.TemporaryDirectory() as tmp:
        src, png = os.path.join(tmp, "sweep.json"), os.path.join(tmp, "sweep.png")
        with open(src, "w") as f:
            f.write(p.stdout)
        plot = subprocess.run(["/usr/bin/python3", os.path.join(root, "scripts", "plot_bench.py"), src, "-o", png],
                              capture_output=True, text=True, timeout=60)
        check(plot.returncode == 0 and os.path.getsize(png) > 1000, f"plot_bench.py: {plot.stderr[-300:]}")
else:
    print("plot_bench.py not checked: no matplotlib in /usr/bin/python3")
print("check_bench:", "FAILED" if failures else "ok")
sys.exit(1 if failures else 0)
