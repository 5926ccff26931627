#!/usr/bin/env python3
"""`lattice bench --device cuda` on tiny-llama (f32):
  graph memory  with the KV cache sized from --gpu-memory-utilization 0.5, the decode graphs' memory was measured
                by a profile capture and reserved before the sizing (stderr says how much), the real capture took
                no more than that, and the device keeps its 50% headroom once everything is set up (to the 2 MiB
                page of each of the cache's 2 x 4 layer tensors and the runner's few buffers: 32 MiB). With
                --kv-cache-blocks the size is the user's and nothing is reserved, graphs still on.
  bench --tp 2  under mpirun (both ranks on this GPU when it is the only one: MPI with host staging, graphs off;
                NCCL with graphs where each rank has a GPU): the report has both ranks' time in communication per
                step, > 0, rank 0's over the steps it ran eagerly.
usage: check_bench_gpu.py LATTICE MPIEXEC DATA_DIR"""
import json
import os
import subprocess
import sys

lattice, mpiexec, data = sys.argv[1:4]
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
bench = ["bench", "--device", "cuda", "--model", f"{data}/tiny-llama/f32", "--batch", "2", "--input-len", "8",
         "--output-len", "4", "--json"]
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, flush=True)


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    check(p.returncode == 0, f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr[-800:]}")
    return (json.loads(p.stdout), p.stderr) if p.returncode == 0 else (None, p.stderr)


r, log = run([lattice] + bench + ["--gpu-memory-utilization", "0.5"])
if r:
    print(f"graphs {r['cuda_graph_mib']:.1f} MiB of {r['cuda_graph_reserved_mib']:.1f} reserved; "
          f"{r['device_memory_free_mib']:.0f} of {r['device_memory_total_mib']:.0f} MiB free once set up")
    check(r["cuda_graphs"] and r["graph_steps"] > 0, f"decode graphs replayed: {r['cuda_graphs_off_reason']}")
    check("reserved before sizing the KV cache" in log, "the reserve is printed")
    check(r["cuda_graph_reserved_mib"] >= 16, "at least the 16 MiB margin reserved")
    check(r["cuda_graph_mib"] <= r["cuda_graph_reserved_mib"], "the real capture fit in the reserve")
    check(r["device_memory_free_mib"] >= 0.5 * r["device_memory_total_mib"] - 32,
          "the 50% headroom is kept once the graphs are captured")
r, _ = run([lattice] + bench + ["--kv-cache-blocks", "64"])
if r:
    check(r["cuda_graphs"] and r["cuda_graph_reserved_mib"] == 0, "--kv-cache-blocks: graphs on, nothing reserved")

r, _ = run([mpiexec, "--oversubscribe", "-np", "2", lattice] + bench + ["--tp", "2"])
if r:
    ranks = r["communication_per_rank"]
    check([x["rank"] for x in ranks] == [0, 1], "both ranks' communication")
    check(all(x["tp_ms_per_step"] > 0 for x in ranks), "each rank's TP collectives took time")
    check(ranks[0]["timed_steps"] == r["eager_steps"], "rank 0 timed the steps it ran eagerly")
    check(r["communication_ms_per_step"] >= r["communication_ms_per_step_mean"] > 0, "max >= mean > 0")
    check(r["output_tokens_per_s"] > 0, "tokens/s > 0")
print("check_bench_gpu:", "FAILED" if failures else "ok")
sys.exit(1 if failures else 0)
