#!/usr/bin/env python3
"""Tensor, pipeline and data parallelism on one GPU, end to end through `lattice generate --device cuda`: tp2, pp2,
tp2 x pp2, and two replicas (dp2) of one rank and of tp2, every rank on GPU 0 (ranks sharing a GPU talk over MPI with host staging), give one rank's outputs
for 32 requests of mixed lengths and sampling settings (fixed seeds) with a KV cache small enough to force
preemption. f32 (--dtype f32), so that the splits differ from one rank only in f32 summation order (~1e-7
relative) and tokens must match exactly, as in tests/parallel/check_coordinator.py on CPU ranks.
usage: check_grid.py LATTICE MPIEXEC DATA_DIR      (python3 standard library only)"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parallel"))
from generate_outputs import differences, requests_file  # noqa: E402  (the CPU-rank check's requests and comparison)

lattice, mpiexec, data = sys.argv[1:4]
model = f"{data}/tiny-llama/f32"
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
GRIDS = [(2, 1, 1), (1, 2, 1), (2, 2, 1), (1, 1, 2), (2, 1, 2)]  # tp, pp, dp


def generate(prefix, *extra):
    args = ["generate", "--model", model, "--device", "cuda", "--dtype", "f32", "--requests", reqs, "--json",
            "--kv-cache-blocks", "12", *extra]
    run = subprocess.run(prefix + [lattice] + args, capture_output=True, text=True, env=env, timeout=60)
    print(f"$ {' '.join(prefix + [lattice] + args)}\n{run.stderr}", flush=True)
    outputs = [json.loads(line) for line in run.stdout.splitlines()] if run.returncode == 0 else None
    return outputs, run


reqs = requests_file()
one, run = generate([])
if one is None:
    print(f"one rank failed (exit {run.returncode})\n0 passed, 1 failed")
    sys.exit(1)
if " 0 preemptions" in run.stderr:
    print("the KV cache was meant to force preemption\n0 passed, 1 failed")
    sys.exit(1)
passed, failed = 0, 0
for tp, pp, dp in GRIDS:
    name = f"tp{tp} x pp{pp}" + (f" x dp{dp}" if dp > 1 else "")
    split, run = generate([mpiexec, "--oversubscribe", "-np", str(tp * pp * dp)], "--tp", str(tp), "--pp", str(pp),
                          "--dp", str(dp))
    problems = [f"exit {run.returncode}"] if split is None else differences(one, split, ("one rank", name))
    if "host staging" not in run.stderr:  # the start-up line names the communicator: NCCL refuses a shared GPU
        problems.append("the start-up log does not say that ranks sharing the GPU use MPI with host staging")
    print(f"{name}: " + ("same outputs as one rank" if not problems else "FAIL\n" + "\n".join(problems)),
          flush=True)
    passed, failed = passed + (not problems), failed + bool(problems)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
