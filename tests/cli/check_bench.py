#!/usr/bin/env python3
"""`lattice bench --batch-sizes` on the CPU (tiny-llama f32): one run per size on one loaded engine, in order, each
with the step count the scheduler must take (one prefill step of batch x input tokens, then output - 1 decode
steps), every step eager (no GPU, so no CUDA graphs), and the per-step timings consistent (host time within the
step time); and scripts/plot_bench.py draws it where matplotlib is installed (Debian's /usr/bin/python3 here).
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
