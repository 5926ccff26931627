#!/usr/bin/env python3
"""`lattice bench` under mpirun on CPU ranks (a tiny `lattice make-model` Llama): with --tp 2 and with --tp 2 --pp 2,
rank 0 runs each batch size through the distributed engine (the step counts of one rank: one prefill step, then one
per generated token after the first, times the micro-batches with --pp 2), and the JSON gives every rank's time in
communication per step, each > 0 where that rank has a TP group (tp) or a PP link (pp), with their maximum and
mean; one rank reports none. --dp, and --profile under mpirun, are refused with a clear error.
usage: check_bench_mpi.py LATTICE MPIEXEC"""
import json
import os
import subprocess
import sys
import tempfile

lattice, mpiexec = sys.argv[1:3]
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, flush=True)


IN, OUT = 8, 4
with tempfile.TemporaryDirectory() as tmp:
    model = os.path.join(tmp, "tiny")
    subprocess.run([lattice, "make-model", "--out", model], check=True, capture_output=True, timeout=60)
    bench = ["bench", "--model", model, "--device", "cpu", "--input-len", str(IN), "--output-len", str(OUT),
             "--kv-cache-blocks", "64", "--json"]

    def run(ranks, *extra):
        cmd = ([lattice] if ranks == 1 else [mpiexec, "--oversubscribe", "-np", str(ranks), lattice]) + bench + list(extra)
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)

    one = run(1, "--batch", "2", "--num-iters", "1", "--num-iters-warmup", "0")
    check(one.returncode == 0, f"one rank: exit {one.returncode}: {one.stderr[-500:]}")
    if one.returncode == 0:
        r = json.loads(one.stdout)
        check(r["tp"] == 1 and r["pp"] == 1, "one rank: tp 1 x pp 1")
        check(r["communication_ms_per_step"] == 0 and r["communication_ms_per_step_mean"] == 0,
              "one rank communicates nothing")
        check([p["rank"] for p in r["communication_per_rank"]] == [0], "one rank: one entry, rank 0")

    # tp 2: a warm-up and two measured iterations per size (the workers follow all six runs), every figure a median
    # of two, so the max and mean over ranks are checked as bounds; tp 2 x pp 2: one iteration, checked exactly.
    for tp, pp, iters, warmup in ((2, 1, 2, 1), (2, 2, 1, 0)):
        name = f"tp {tp} x pp {pp}"
        p = run(tp * pp, "--tp", str(tp), "--pp", str(pp), "--batch-sizes", "1,2", "--num-iters", str(iters),
                "--num-iters-warmup", str(warmup))
        check(p.returncode == 0, f"{name}: exit {p.returncode}: {p.stderr[-800:]}")
        if p.returncode:
            continue
        runs = json.loads(p.stdout)["runs"]
        check([r["batch"] for r in runs] == [1, 2], f"{name}: runs for batch 1 and 2")
        for r in runs:
            b = r["batch"]
            what = f"{name}, batch {b}"
            check(r["tp"] == tp and r["pp"] == pp, f"{what}: the grid in the report")
            check(r["output_tokens_per_s"] > 0 and r["decode_tokens_per_s"] > 0, f"{what}: tokens/s > 0")
            # batch x 8 prompt tokens take one step; each later token one decode step. Under pp 2 the scheduler
            # splits a batch over the stages' micro-batches, up to pp of them.
            check(1 + OUT - 1 <= r["steps"] <= min(b, pp) * (1 + OUT - 1), f"{what}: {r['steps']} steps")
            ranks = r["communication_per_rank"]
            check([x["rank"] for x in ranks] == list(range(tp * pp)), f"{what}: one entry per rank, in order")
            for x in ranks:
                check(x["timed_steps"] == r["steps"], f"{what}, rank {x['rank']}: every CPU step timed")
                check(x["tp_ms_per_step"] > 0, f"{what}, rank {x['rank']}: time in its TP group's collectives")
                check((x["pp_ms_per_step"] > 0) == (pp > 1), f"{what}, rank {x['rank']}: PP time iff pp > 1")
            check(r["communication_ms_per_step"] >= r["communication_ms_per_step_mean"] > 0, f"{what}: max >= mean > 0")
            check(len(r["iterations"]) == iters, f"{what}: {iters} measured iterations")
            if iters > 1:
                continue
            for x in ranks:
                parts = x["tp_ms_per_step"] + x["pp_ms_per_step"] + x["control_ms_per_step"]
                check(abs(parts - x["total_ms_per_step"]) <= 1e-9 * max(1.0, parts), f"{what}: total = sum of parts")
            totals = [x["total_ms_per_step"] for x in ranks]
            check(r["communication_ms_per_step"] == max(totals), f"{what}: communication_ms_per_step is the max")
            mean = sum(totals) / len(totals)
            check(abs(r["communication_ms_per_step_mean"] - mean) <= 1e-9 * mean, f"{what}: the mean over ranks")

    dp = run(2, "--dp", "2")
    check(dp.returncode != 0 and "lattice bench measures one replica; --dp is for generate and serve" in dp.stderr,
          f"--dp refused: {dp.stderr[-300:]}")
    prof = run(2, "--tp", "2", "--profile")
    check(prof.returncode != 0 and "--profile times the ops of one rank" in prof.stderr,
          f"--profile under mpirun refused: {prof.stderr[-300:]}")
print("check_bench_mpi:", "FAILED" if failures else "ok")
sys.exit(1 if failures else 0)
