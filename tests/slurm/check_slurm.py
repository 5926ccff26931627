#!/usr/bin/env python3
"""Lattice under a real Slurm (Debian's munged, slurmctld and slurmd, brought up by slurm_cluster.py), end to
end through `srun --mpi=pmix` and scripts/slurm/lattice.sbatch. Every run's outputs must equal a one-rank run of
the same 32 mixed requests (tests/parallel/generate_outputs.py).
  one-node   on 127.0.0.1: srun for tp 2, pp 2 and tp 2 x pp 2 (overcommitted); the template in generate mode
             (tp 2 picked from the step) and in serve mode (a completion from the node and port it prints,
             with its API key, then scancel --signal=TERM stops it cleanly).
  two-nodes  nodes n1 and n2 in their own network namespaces joined by a veth: srun places ranks in blocks
             (0, 1 on n1; 2, 3 on n2); pp 2 with one stage per node and the template's tp 2 x pp 2 over two
             nodes, both picked from the step, with the activations crossing the veth (its byte counters);
             a step of 2 + 1 tasks gets no guessed grid.
Exits 77 (skipped) with the reason where the machine cannot host the cluster (not root, Slurm not installed,
namespaces forbidden).
usage: check_slurm.py one-node|two-nodes LATTICE DATA_DIR RUN_DIR TEMPLATE [--no-serve]"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parallel"))
from generate_outputs import differences, requests_file  # noqa: E402
from slurm_cluster import Cluster, Unavailable, free_ports  # noqa: E402

SKIP = 77
DEADLINE_S = 200  # below the ctest TIMEOUT, so that a stuck run still stops every daemon
mode, lattice, data, run_dir, template = sys.argv[1:6]
with_serve = "--no-serve" not in sys.argv[6:]
model = os.path.abspath(f"{data}/tiny-llama/f32")
lattice, template = os.path.abspath(lattice), os.path.abspath(template)
failures = []


def on_deadline(signum, frame):
    raise TimeoutError(f"check_slurm {mode} ran past {DEADLINE_S} s")


def check(ok, message):
    print(("ok:   " if ok else "FAIL: ") + message.split("\n")[0])
    if not ok:
        failures.append(message)


def generate_args(requests):
    return [lattice, "generate", "--device", "cpu", "--model", model, "--requests", requests, "--json"]


class Reference:
    """The requests file and what one rank, without Slurm or MPI, makes of it."""
    def __init__(self, directory):
        self.path = shutil.move(requests_file(), f"{directory}/requests.jsonl")
        self.requests = [json.loads(l) for l in read(self.path).splitlines()]
        one = subprocess.run(generate_args(self.path), capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, OMP_NUM_THREADS="1"))
        if one.returncode:
            raise RuntimeError(f"the one-rank run exited {one.returncode}:\n{one.stderr}")
        self.outputs = [json.loads(l) for l in one.stdout.splitlines()]

    def check(self, text, label):
        """Checks a run's --json lines against the one-rank outputs."""
        problems = differences(self.outputs, [json.loads(l) for l in text.splitlines()], ("one rank", label))
        check(not problems, f"{label}: outputs equal one rank's" if not problems else problems[0])


def srun(cluster, options, lattice_flags, ref, label):
    """Runs generate under srun and checks its outputs; returns its stderr."""
    run = cluster.run(["srun", "--mpi=pmix", "--kill-on-bad-exit=1", *options, *generate_args(ref.path),
                       *lattice_flags], 90)
    if run.returncode:
        check(False, f"{label}: srun exited {run.returncode}:\n{run.stderr}")
        return run.stderr
    ref.check(run.stdout, label)
    return run.stderr


def sbatch(cluster, options, env):
    """Submits the template and returns its job id."""
    run = cluster.run(["sbatch", "--parsable", f"--chdir={cluster.run_dir}/jobs", "--time=5", *options, template],
                      30, env=env)
    if run.returncode:
        raise RuntimeError(f"sbatch exited {run.returncode}:\n{run.stderr}")
    return run.stdout.strip().split(";")[0]


def job_field(cluster, job, field):
    shown = cluster.run(["scontrol", "show", "job", job], 10).stdout
    m = re.search(rf"\b{field}=(\S+)", shown)
    return m.group(1) if m else None


def wait_job(cluster, job, timeout):
    """The job's final state (COMPLETED, FAILED, ...) once it has ended."""
    end = time.time() + timeout
    while time.time() < end:
        state = job_field(cluster, job, "JobState")
        if state not in (None, "PENDING", "CONFIGURING", "RUNNING", "COMPLETING"):
            return state
        time.sleep(0.3)
    raise TimeoutError(f"job {job} still {state} after {timeout} s (reason: {job_field(cluster, job, 'Reason')})")


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def template_generate(cluster, options, ref, want_grid, label):
    job = sbatch(cluster, options, {"MODEL": model, "LATTICE": lattice, "REQUESTS": ref.path,
                                    "LATTICE_ARGS": "--device cpu"})
    state = wait_job(cluster, job, 90)
    jobs = f"{cluster.run_dir}/jobs"
    log = read(f"{jobs}/lattice-{job}.log")
    if state != "COMPLETED":
        check(False, f"{label}: job {job} ended {state}:\n{log}")
        return
    ref.check(read(f"{jobs}/lattice-{job}.jsonl"), label)
    check(want_grid in log, f"{label}: the log says '{want_grid}':\n{log}")


def template_serve(cluster, ref):
    """The template's serve mode: a greedy completion from the printed address equals the one-rank tokens."""
    port = str(free_ports(1)[0])
    # HOST: the template's default, 0.0.0.0, would listen on every interface of the machine running the test.
    job = sbatch(cluster, ["--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1"],
                 {"MODE": "serve", "MODEL": model, "LATTICE": lattice, "PORT": port, "GRPC_PORT": "-1",
                  "HOST": "127.0.0.1", "API_KEY": "slurm test key", "LATTICE_ARGS": "--device cpu"})
    log_path = f"{cluster.run_dir}/jobs/lattice-{job}.log"
    end = time.time() + 60
    while time.time() < end and job_field(cluster, job, "JobState") in ("PENDING", "CONFIGURING", "RUNNING") and \
            not (os.path.exists(log_path) and "lattice serve: ready" in read(log_path)):
        time.sleep(0.3)
    log = read(log_path) if os.path.exists(log_path) else "(no log)"
    m = re.search(r"lattice: serving on node (\S+), (http://\S+) ", log)
    if not m or "lattice serve: ready" not in log:
        check(False, f"serve: job {job} printed no address or did not become ready:\n{log}")
        return
    check(m.group(1) == "n1" and m.group(2) == f"http://127.0.0.1:{port}", f"serve: prints {m.group(0)}")
    # A greedy request with no penalties: its tokens depend on the prompt alone.
    greedy = next(r for r in ref.requests if r["temperature"] == 0 and
                  not {"repetition_penalty", "presence_penalty", "frequency_penalty"} & set(r))
    want = next(o for o in ref.outputs if o["id"] == greedy["id"])
    body = json.dumps({"prompt": greedy["prompt_ids"], "max_tokens": greedy["max_tokens"], "temperature": 0})
    url = f"{m.group(2)}/v1/completions"
    try:
        urllib.request.urlopen(urllib.request.Request(url, data=body.encode(), method="POST"), timeout=30)
        check(False, "serve: a request without the API key was answered")
    except urllib.error.HTTPError as e:
        check(e.code == 401, f"serve: a request without the API key gets {e.code}, want 401")
    req = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer slurm test key"})
    with urllib.request.urlopen(req, timeout=30) as r:
        got = json.loads(r.read())
    check(got["choices"][0]["text"] == want["text"] and got["usage"]["completion_tokens"] == len(want["tokens"]),
          f"serve: completion equals one rank's ({got['choices'][0]['text']!r} vs {want['text']!r})")
    cluster.run(["scancel", "--signal=TERM", job], 10)
    state = wait_job(cluster, job, 30)
    log = read(log_path)
    check(state == "COMPLETED" and "lattice serve: stopped" in log,
          f"serve: SIGTERM through scancel stops the job cleanly (state {state}):\n{log}")


def one_node(cluster, ref):
    srun(cluster, ["-n", "2"], ["--tp", "2"], ref, "srun tp 2")
    srun(cluster, ["-n", "2"], ["--pp", "2"], ref, "srun pp 2")
    srun(cluster, ["-n", "4", "--overcommit"], ["--tp", "2", "--pp", "2"], ref, "srun tp 2 x pp 2")
    template_generate(cluster, ["--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1"], ref,
                      "tp 2 x pp 1 (from the Slurm step: 2 tasks per node on 1 node)", "template, one node")
    if with_serve:
        template_serve(cluster, ref)
    else:
        print("skipped: the template's serve mode (this lattice was built without serve)")


def two_nodes(cluster, ref):
    placed = cluster.run(["srun", "--nodes=2", "--ntasks-per-node=2", "-l", "hostname"], 30).stdout
    hosts = dict(line.split(": ") for line in placed.split("\n") if line)
    check(hosts == {"0": "n1", "1": "n1", "2": "n2", "3": "n2"}, f"ranks placed in blocks: {hosts}")
    hidden = json.loads(read(f"{model}/config.json"))["hidden_size"]
    tokens = sum(len(o["tokens"]) + o["prompt_tokens"] for o in ref.outputs)

    def across_the_veth(label, tp, run):
        # Each TP rank of stage 0 sends every token's hidden state (f32) to its peer in stage 1, on n2.
        sent = cluster.node_tx_bytes("n1")
        run()
        sent = cluster.node_tx_bytes("n1") - sent
        activations = tp * tokens * hidden * 4
        check(sent >= activations, f"{label}: n1 sent {sent} bytes over the veth; the activations are {activations}")

    def srun_pp2():
        grid = "tp 1 x pp 2 (from the Slurm step: 1 task per node on 2 nodes)"
        log = srun(cluster, ["--nodes=2", "--ntasks-per-node=1"], [], ref, "srun pp 2 over two nodes")
        check(grid in log, f"srun pp 2 over two nodes: lattice says '{grid}':\n{log}")

    across_the_veth("srun pp 2 over two nodes", 1, srun_pp2)
    # 2 + 1 tasks: no tasks-per-node x nodes grid, so no guess; the flags' default then fails with advice.
    uneven = cluster.run(["srun", "--mpi=pmix", "--nodes=2", "-n", "3", *generate_args(ref.path)], 60)
    check(uneven.returncode != 0 and "the job has 3 ranks but tp 1 x pp 1 = 1" in uneven.stderr,
          f"srun of 2 + 1 tasks: lattice picks no grid (exit {uneven.returncode}):\n{uneven.stderr}")
    across_the_veth("template, two nodes", 2, lambda: template_generate(
        cluster, ["--nodes=2", "--ntasks-per-node=2", "--cpus-per-task=1"], ref,
        "tp 2 x pp 2 (from the Slurm step: 2 tasks per node on 2 nodes)", "template, two nodes"))


def main():
    signal.signal(signal.SIGALRM, on_deadline)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("check_slurm: terminated"))
    signal.alarm(DEADLINE_S)
    start = time.time()
    try:
        cluster = Cluster.loopback(run_dir) if mode == "one-node" else Cluster.two_namespaces(run_dir)
    except Unavailable as e:
        print(f"SKIP: {e}")
        return SKIP
    # The nodes share this machine's cores (2 in CI) among up to 4 ranks: a rank waiting in MPI must yield its
    # core (mpirun --oversubscribe sets this itself; a direct launch by srun cannot know).
    cluster.env["OMPI_MCA_mpi_yield_when_idle"] = "1"
    try:
        with cluster:
            print(f"cluster up after {time.time() - start:.1f} s: {', '.join(n for n, _ in cluster.nodes)}")
            try:
                ref = Reference(cluster.run_dir)
                one_node(cluster, ref) if mode == "one-node" else two_nodes(cluster, ref)
            except Exception as e:  # the daemons' logs, before stop() (which may remove a temporary run dir)
                failures.append(f"{type(e).__name__}: {e}")
                print(f"FAIL: {type(e).__name__}: {e}\n{cluster.logs()}")
            finally:
                signal.alarm(0)  # stop() must not be interrupted
    except Exception as e:  # start-up (its message has the logs) or shut-down
        failures.append(f"{type(e).__name__}: {e}")
        print(f"FAIL: {type(e).__name__}: {e}")
    print(f"{mode}: {len(failures)} failed, in {time.time() - start:.1f} s (run directory {cluster.run_dir})")
    for f in failures:
        print("----\n" + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
