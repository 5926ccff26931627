#!/usr/bin/env python3
"""Predicted (lattice plan) vs measured (lattice bench) step times on the CPU backend, one rank.

usage: scripts/validate_plan_cpu.py LATTICE PROFILE.json REPEATS MODEL_DIR:BATCH[,BATCH...] ...
Calibrates PROFILE.json first (lattice plan calibrate --device cpu, op shapes of the first model), then for each
model and batch runs `lattice bench --json` REPEATS times (input 128, output 64) and prints a markdown table of the
median measured decode step and batch prefill time against the prediction, with the load average at each run.
On a machine shared with other work the runs spread widely; the error is given against the median and against the
fastest run (the one least slowed by other processes).
"""
import json
import os
import statistics
import subprocess
import sys

ISL, OSL = 128, 64


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    lattice, profile, repeats, specs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    first_model = specs[0].split(":")[0]
    subprocess.run([lattice, "plan", "calibrate", "--device", "cpu", "--model", first_model, "--out", profile],
                   check=True, capture_output=True)
    print(f"calibrated {profile} (load average {os.getloadavg()[0]:.1f}); {repeats} runs each, median; "
          f"input {ISL}, output {OSL}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'all cores')}\n")
    print("| model | batch | decode step: predicted ms | measured ms, median (min-max) | error vs median / fastest | "
          "prefill of the batch: predicted ms | measured ms, median (min-max) | error vs median / fastest | load avg |")
    print("|---|---|---|---|---|---|---|---|---|")
    for spec in specs:
        model, batches = spec.split(":")
        for batch in [int(b) for b in batches.split(",")]:
            plan = run_json([lattice, "plan", "--model", model, "--gpu", profile, "--gpus", "1", "--isl", str(ISL),
                             "--osl", str(OSL), "--batch", str(batch), "--dtype", "f32", "--json"])
            layout = plan["layouts"][0]
            decode, prefill, loads = [], [], []
            for _ in range(repeats):
                loads.append(os.getloadavg()[0])
                b = run_json([lattice, "bench", "--model", model, "--batch", str(batch), "--input-len", str(ISL),
                              "--output-len", str(OSL), "--device", "cpu", "--json"])
                decode.append(1e3 * batch / b["decode_tokens_per_s"])
                prefill.append(1e3 * batch * ISL / b["prefill_tokens_per_s"])
            print(f"| {os.path.basename(model.rstrip('/'))} | {batch} | {cell(layout['decode_step_ms'], decode)} | "
                  f"{cell(layout['prefill_batch_ms'], prefill)} | {min(loads):.1f}-{max(loads):.1f} |", flush=True)


def cell(predicted, measured):
    med, fast = statistics.median(measured), min(measured)
    return (f"{predicted:.2f} | {med:.2f} ({fast:.2f}-{max(measured):.2f}) | "
            f"{100 * (predicted - med) / med:+.0f}% / {100 * (predicted - fast) / fast:+.0f}%")


if __name__ == "__main__":
    main()
