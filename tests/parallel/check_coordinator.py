#!/usr/bin/env python3
"""The rank-0 coordinator under mpirun, end to end through `lattice generate`:
  equivalence  32 requests of mixed lengths and sampling settings (fixed seeds) under tp=2 x pp=2, with a KV
               cache small enough to force preemption, give exactly the single-rank outputs.
  prefix-caching  32 requests sharing prefixes of random lengths, with prefix caching under tp=2 x pp=2 and a
               KV cache small enough to force eviction and preemption, give the single-rank outputs without it.
  fault        a rank that throws mid-run (LATTICE_FAULT_INJECT) ends the job non-zero within 10 s, and the
               log names the rank and the error.
  bad-grid     3 ranks for tp=2 (and for tp=2 x dp=2) is a clear error naming what to pass.
  dp2, dp2-tp2, dp2-pp2  two data-parallel replicas (of one rank, tp=2, pp=2): the 32 requests give exactly the
               single-rank outputs, and both replicas served some of them (generate's per-replica lines).
  dp-fault     a rank of replica 1 that throws mid-run ends the job non-zero within 10 s, naming the rank.
  dp-kill      replica 1's leader killed mid-run (SIGKILL) ends the job non-zero within 20 s."""
import json
import os
import re
import subprocess
import sys
import time

from generate_outputs import differences, requests_file

mode, lattice, mpiexec, data = sys.argv[1:5]
model = f"{data}/tiny-llama/f32"
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
mpirun = [mpiexec, "--oversubscribe"]


def fail(message):
    print(message)
    print("0 passed, 1 failed")
    sys.exit(1)


def counts(log, pattern):
    """The integers of the first line of `log` matching `pattern` (a regular expression with groups)."""
    match = re.search(pattern, log)
    if not match:
        fail(f"no line matching {pattern!r} in:\n{log}")
    return [int(g) for g in match.groups()]


if mode in ("equivalence", "prefix-caching"):
    base = ["generate", "--model", model, "--json"]
    if mode == "equivalence":
        reqs = requests_file()
        one_args = grid_args = base + ["--requests", reqs, "--kv-cache-blocks", "12"]
    else:
        reqs = requests_file(shared_prefixes=True)
        one_args = base + ["--requests", reqs, "--kv-cache-blocks", "256", "--no-enable-prefix-caching"]
        grid_args = base + ["--requests", reqs, "--kv-cache-blocks", "14", "--enable-prefix-caching"]
    one = subprocess.run([lattice] + one_args, capture_output=True, text=True, env=env, timeout=120)
    grid = subprocess.run(mpirun + ["-np", "4", lattice] + grid_args + ["--tp", "2", "--pp", "2"], capture_output=True,
                          text=True, env=env, timeout=120)
    if one.returncode or grid.returncode:
        fail(f"runs failed:\n{one.stderr}\n{grid.stderr}")
    a = [json.loads(l) for l in one.stdout.splitlines()]
    b = [json.loads(l) for l in grid.stdout.splitlines()]
    problems = differences(a, b, ("one rank", "tp2 x pp2"))
    if problems:
        fail(problems[0])
    if mode == "equivalence" and " 0 preemptions" in one.stderr:
        fail("the KV cache was meant to force preemption:\n" + one.stderr)
    if mode == "prefix-caching":
        preemptions, = counts(grid.stderr, r"steps, (\d+) preemptions")
        hits, queries, evictions = counts(grid.stderr, r"prefix cache: (\d+) of (\d+) prompt tokens hit, (\d+) blocks")
        if not (preemptions > 0 and evictions > 0 and 0 < hits <= queries):
            fail("the grid run was meant to hit the prefix cache, evict and preempt:\n" + grid.stderr)
        if "prefix cache:" in one.stderr:
            fail("--no-enable-prefix-caching left the cache on:\n" + one.stderr)
    print(grid.stderr)
elif mode.startswith("dp2"):
    split = {"dp2": [], "dp2-tp2": ["--tp", "2"], "dp2-pp2": ["--pp", "2"]}[mode] + ["--dp", "2"]
    ranks = 4 if len(split) > 2 else 2
    args = ["generate", "--model", model, "--json", "--requests", requests_file(), "--kv-cache-blocks", "12"]
    one = subprocess.run([lattice] + args, capture_output=True, text=True, env=env, timeout=120)
    grid = subprocess.run(mpirun + ["-np", str(ranks), lattice] + args + split, capture_output=True, text=True,
                          env=env, timeout=120)
    if one.returncode or grid.returncode:
        fail(f"runs failed:\n{one.stderr}\n{grid.stderr}")
    problems = differences([json.loads(l) for l in one.stdout.splitlines()],
                           [json.loads(l) for l in grid.stdout.splitlines()], ("one rank", mode))
    if problems:
        fail(problems[0])
    served = [counts(grid.stderr, rf"replica {r}: (\d+) requests, (\d+) steps, (\d+) generated") for r in (0, 1)]
    if served[0][0] + served[1][0] != 32 or min(s[2] for s in served) == 0:
        fail(f"both replicas were meant to serve requests, 32 in all: {served}\n{grid.stderr}")
    print(grid.stderr)
elif mode in ("dp-fault", "dp-kill"):
    # dp2 x tp2: ranks 2 and 3 are replica 1 (2 its leader); the injection fires at that rank's step 2.
    spec, limit, want = ("3:2", 10, "[rank 3]") if mode == "dp-fault" else ("2:2:kill", 20, "rank 2")
    start = time.time()
    run = subprocess.run(mpirun + ["-np", "4", "-x", f"LATTICE_FAULT_INJECT={spec}", lattice, "generate", "--model",
                                   model, "--requests", requests_file(), "--tp", "2", "--dp", "2"],
                         capture_output=True, text=True, env=env, timeout=60)
    elapsed = time.time() - start
    log = run.stdout + run.stderr
    if run.returncode == 0 or elapsed > limit or want not in log or \
            (mode == "dp-fault" and "injected fault at step" not in log):
        fail(f"exit {run.returncode} after {elapsed:.1f} s:\n{log}")
    print(f"job ended with exit {run.returncode} after {elapsed:.1f} s:\n{log[-2000:]}")
elif mode == "fault":
    start = time.time()
    run = subprocess.run(mpirun + ["-np", "4", "-x", "LATTICE_FAULT_INJECT=2:3", lattice, "generate", "--model", model,
                                   "--prompt-ids", "1,2,3", "--max-tokens", "20", "--tp", "2", "--pp", "2"],
                         capture_output=True, text=True, env=env, timeout=60)
    elapsed = time.time() - start
    log = run.stdout + run.stderr
    if run.returncode == 0 or elapsed > 10 or "[rank 2]" not in log or "injected fault at step 3" not in log:
        fail(f"exit {run.returncode} after {elapsed:.1f} s:\n{log}")
    print(f"job ended with exit {run.returncode} after {elapsed:.1f} s")
elif mode == "bad-grid":
    run = subprocess.run(mpirun + ["-np", "3", lattice, "generate", "--model", model, "--prompt-ids", "1", "--tp", "2"],
                         capture_output=True, text=True, env=env, timeout=60)
    if run.returncode == 0 or "the job has 3 ranks but tp 2 x pp 1 = 2" not in run.stderr:
        fail(f"exit {run.returncode}:\n{run.stderr}")
    run = subprocess.run(mpirun + ["-np", "3", lattice, "generate", "--model", model, "--prompt-ids", "1", "--tp", "2",
                                   "--dp", "2"], capture_output=True, text=True, env=env, timeout=60)
    want = "the job has 3 ranks but tp 2 x pp 1 x dp 2 = 4; launch with mpirun -np 4 or pass --tp/--pp/--dp"
    if run.returncode == 0 or want not in run.stderr:
        fail(f"exit {run.returncode}:\n{run.stderr}")
else:
    fail(f"unknown mode {mode}")
print("1 passed, 0 failed")
