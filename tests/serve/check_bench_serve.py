#!/usr/bin/env python3
"""lattice bench-serve against a server on the tiny-llama fixture: every request succeeds, the JSON summary
holds throughput and TTFT / inter-token / end-to-end percentiles consistent with the per-request records,
and scripts/plot_bench_serve.py turns it into a PNG.
usage: check_bench_serve.py LATTICE DATA_DIR SCRIPTS_DIR WORK_DIR"""
import json
import os
import subprocess
import sys

from serve_fixture import Server, parse_metrics

lattice, data, scripts, work = sys.argv[1:5]
os.makedirs(work, exist_ok=True)
out, png = os.path.join(work, "bench-serve.json"), os.path.join(work, "bench-serve.png")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


with Server(lattice, f"{data}/tiny-llama/f32", "--grpc-port", "-1", env={"OMP_WAIT_POLICY": "passive"}) as server:
    res = subprocess.run([lattice, "bench-serve", "--url", f"http://127.0.0.1:{server.port}", "--rate", "50",
                          "--requests", "16", "--input-len", "8", "--output-len", "6", "--stream", "--output", out],
                         capture_output=True, text=True, timeout=120)
    check(res.returncode == 0, f"bench-serve exit {res.returncode}: {res.stderr}")
    check("time to first token" in res.stdout and "requests/s" in res.stdout, f"report: {res.stdout}")
    # A shared-prefix workload: 40 of every 48 prompt tokens are the same, so the prefix cache hits.
    shared = subprocess.run([lattice, "bench-serve", "--url", f"http://127.0.0.1:{server.port}", "--rate", "0",
                             "--requests", "8", "--input-len", "48", "--shared-prefix", "40", "--output-len", "2",
                             "--output", out + ".shared"], capture_output=True, text=True, timeout=120)
    check(shared.returncode == 0, f"bench-serve --shared-prefix exit {shared.returncode}: {shared.stderr}")
    _, samples = parse_metrics(server.request("GET", "/metrics")[1])
    hits = samples.get(("lattice_prefix_cache_hits_total", frozenset()), 0)
    check(hits >= 7 * 32, f"the shared prefix hit the prefix cache: {hits} tokens")  # 2 blocks for 7 of the 8
with open(out) as f:
    result = json.load(f)
s, reqs = result["summary"], result["requests"]
check(s["succeeded"] == 16 and s["failed"] == 0 and len(reqs) == 16, f"succeeded {s['succeeded']}")
check(all(r["output_tokens"] == 6 and r["prompt_tokens"] == 8 for r in reqs), "usage per request")
check(all(0 < r["ttft"] <= r["e2e"] for r in reqs), "0 < ttft <= e2e")
for key in ("ttft_s", "itl_s", "e2e_s"):
    st = s[key]
    check(st["p50"] <= st["p90"] <= st["p99"], f"{key} percentiles ordered: {st}")
e2e = sorted(r["e2e"] for r in reqs)
check(abs(s["e2e_s"]["mean"] - sum(e2e) / 16) < 1e-9, "e2e mean matches the records")
check(abs(s["output_token_throughput"] - 96 / s["duration_s"]) < 1e-6, "output throughput = tokens / duration")
plot = subprocess.run(["/usr/bin/python3", os.path.join(scripts, "plot_bench_serve.py"), out, png],
                      capture_output=True, text=True, timeout=120)
check(plot.returncode == 0, f"plot script: {plot.stderr}")
with open(png, "rb") as f:
    check(f.read(8) == b"\x89PNG\r\n\x1a\n", "the plot is a PNG")
print(f"{'ok' if not failures else str(len(failures)) + ' failed'}")
sys.exit(1 if failures else 0)
