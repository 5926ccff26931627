#!/usr/bin/env python3
"""lattice serve under mpirun (tp 2, pp 2, and dp 2): rank 0 serves HTTP while rank 1 runs the worker loop; greedy
completions equal a single-process server's, /health is ready, /metrics has each stage's step time by rank,
and SIGTERM to rank 0 shuts the whole job down with exit code 0. With dp 2 (rank 1 a replica of its own), the
4 choices of one request, routed over both replicas, each equal the single-process text, and
lattice_replica_requests_total counts sequences on both replicas.
usage: check_mpi.py LATTICE MPIEXEC DATA_DIR"""
import sys

from serve_fixture import Server, parse_metrics

lattice, mpiexec, data = sys.argv[1:4]
model = f"{data}/tiny-llama/f32"
req = {"prompt": "Hello world", "max_tokens": 16, "temperature": 0, "ignore_eos": True, "logprobs": 1}
failures = []

with Server(lattice, model, "--grpc-port", "-1") as single:
    status, ref = single.request("POST", "/v1/completions", req)
for grid in (["--tp", "2"], ["--pp", "2"], ["--dp", "2"]):
    prefix = [mpiexec, "-n", "2", "--oversubscribe", "-x", "OMP_NUM_THREADS=1"]
    server = Server(lattice, model, "--grpc-port", "-1", *grid, prefix=prefix)
    try:
        status, health = server.request("GET", "/health")
        status, got = server.request("POST", "/v1/completions", req)
        if got["choices"][0]["text"] != ref["choices"][0]["text"]:
            failures.append(f"{grid}: text {got['choices'][0]['text']!r} != {ref['choices'][0]['text']!r}")
        lp, ref_lp = got["choices"][0]["logprobs"]["token_logprobs"], ref["choices"][0]["logprobs"]["token_logprobs"]
        if any(abs(a - b) > 1e-3 for a, b in zip(lp, ref_lp)):
            failures.append(f"{grid}: logprobs differ {lp} vs {ref_lp}")
        if health != {"status": "ok"}:
            failures.append(f"{grid}: health {health}")
        if "--dp" in grid:
            status, four = server.request("POST", "/v1/completions", {**req, "n": 4})
            texts = [c["text"] for c in four["choices"]]
            if texts != [ref["choices"][0]["text"]] * 4:
                failures.append(f"{grid}: the 4 choices {texts} != {ref['choices'][0]['text']!r}")
            _, text = server.request("GET", "/metrics")
            routed = {dict(labels).get("replica"): value for (name, labels), value in parse_metrics(text)[1].items()
                      if name == "lattice_replica_requests_total"}
            if set(routed) != {"0", "1"} or min(routed.values()) < 1 or sum(routed.values()) != 5:
                failures.append(f"{grid}: sequences by replica {routed}, want both replicas and 5 in all")
        # Step time per rank: with pp 2 both stages report their own part (TP rank 0 of each stage); with dp 2
        # each replica's steps, by the rank that ran them.
        _, text = server.request("GET", "/metrics")
        counts = {dict(labels).get("rank"): value for (name, labels), value in parse_metrics(text)[1].items()
                  if name == "lattice_step_time_seconds_count"}
        want = {"0"} if "--tp" in grid else {"0", "1"}
        if set(counts) != want or min(counts.values()) < 1:
            failures.append(f"{grid}: step time counts by rank {counts}, want ranks {sorted(want)}")
    finally:
        code = server.stop()
    if code != 0:
        failures.append(f"{grid}: exit code {code} after SIGTERM to rank 0:\n{''.join(server.log)}")
for f in failures:
    print("FAIL:", f)
print("ok" if not failures else f"{len(failures)} failed")
sys.exit(1 if failures else 0)
