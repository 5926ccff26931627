#!/usr/bin/env python3
"""Liveness across ranks under mpirun (2 ranks, tiny model, loopback): a stopped rank and a killed rank.

- kill -STOP of rank 1 (tp 2) while a streamed completion runs, with --step-timeout 3: /health turns 503 within the
  timeout plus a margin, the stream ends with an error event, [DONE] and a well-formed end of its chunked body, the
  job exits non-zero, and its log names rank 1 as the rank that has not finished the step.
- kill -9 of rank 1 (pp 2) while a streamed completion runs: the stream ends the same way (mpirun's kill sequence
  starts with a SIGCONT to rank 0), /health turns 503, and the job exits non-zero.
Prints the measured delays (the figures in docs/serving.md). Every process is resumed and killed however it ends.
usage: check_liveness.py LATTICE MPIEXEC DATA_DIR"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from serve_fixture import Checks, Server

lattice, mpiexec, data = sys.argv[1:4]
model = f"{data}/tiny-llama/f32"
STEP_TIMEOUT = 3.0
check = Checks()


def worker_pid(server):
    """The pid of the rank that is not rank 0 (both are mpirun's children on this one node)."""
    out = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True, timeout=10).stdout
    pids = [int(p) for p in out.split() if int(p) != server.rank0_pid]
    if len(pids) != 1:
        raise RuntimeError(f"expected one worker under mpirun (pid {server.proc.pid}), found {pids}")
    return pids[0]


class Stream(threading.Thread):
    """A streamed completion over a raw socket: parses the chunked body strictly and records when each SSE event
    arrived."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.port, self.arrived = server.port, threading.Condition()
        self.events, self.framing_error, self.clean_end, self.status = [], None, False, None

    def run(self):
        body = json.dumps({"prompt": "Hello", "max_tokens": 2000, "stream": True, "ignore_eos": True}).encode()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
                sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body) + body)
                self._read(sock.makefile("rb"))
        except (OSError, ValueError) as e:
            self.framing_error = f"{type(e).__name__}: {e}"

    def _read(self, f):
        self.status = int(f.readline().split()[1])
        while f.readline() not in (b"\r\n", b""):
            pass
        text = b""
        while True:
            size_line = f.readline()
            if not size_line.endswith(b"\r\n"):
                self.framing_error = f"cut inside a chunk header: {size_line!r}"
                return
            size = int(size_line.split(b";")[0], 16)
            chunk = f.read(size + 2)
            if len(chunk) != size + 2 or not chunk.endswith(b"\r\n"):
                self.framing_error = f"cut inside a chunk of {size} bytes"
                return
            if size == 0:
                self.clean_end = True
                return
            text += chunk[:-2]
            while b"\n\n" in text:
                frame, text = text.split(b"\n\n", 1)
                if frame.startswith(b"data: "):
                    payload = frame[6:].decode()
                    with self.arrived:
                        self.events.append((time.monotonic(), payload if payload == "[DONE]" else json.loads(payload)))
                        self.arrived.notify_all()

    def tokens(self, n, timeout):
        """Waits until `n` events have arrived; returns whether they did."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.events) >= n, timeout)


def health(server):
    try:
        status, _ = server.request("GET", "/health", timeout=2)
        return status
    except OSError:
        return None  # the process has gone


def scenario(name, grid, sig):
    """Starts the job, streams, signals rank 1; returns (seconds to /health 503 or None, stream, server, t0)."""
    prefix = [mpiexec, "-n", "2", "--oversubscribe", "-x", "OMP_NUM_THREADS=1", "-x", "LATTICE_SERVE_STEP_DELAY_MS"]
    server = Server(lattice, model, "--grpc-port", "-1", "--step-timeout", str(STEP_TIMEOUT), *grid, prefix=prefix,
                    env={"LATTICE_SERVE_STEP_DELAY_MS": "50"})
    worker = None
    try:
        worker = worker_pid(server)
        stream = Stream(server)
        stream.start()
        plain = {}  # a non-streamed request alongside: its body must be the error object

        def non_streamed():
            try:
                plain["reply"] = server.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2000,
                                                                            "ignore_eos": True}, timeout=30)
            except OSError as e:
                plain["reply"] = (None, repr(e))
        waiter = threading.Thread(target=non_streamed, daemon=True)
        waiter.start()
        check(stream.tokens(5, 30), f"{name}: the stream started")
        t0 = time.monotonic()
        os.kill(worker, sig)
        to_503 = None
        while time.monotonic() - t0 < STEP_TIMEOUT + 10 and server.proc.poll() is None:
            status = health(server)
            if status == 503 and to_503 is None:
                to_503 = time.monotonic() - t0
                status, body = server.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2}, timeout=5)
                check(status == 503 and body["error"]["code"] == "engine_failed",
                      f"{name}: a new request on a failed server gets 503 engine_failed, got {status} {body}")
            time.sleep(0.05)
        stream.join(15)
        waiter.join(15)
        # Past one second a non-streamed response has sent 200 and a chunked body led by spaces; the error object
        # then ends that body.
        status, body = plain.get("reply", (None, None))
        check(status in (200, 500) and isinstance(body, dict) and body.get("error", {}).get("type") == "server_error",
              f"{name}: a non-streamed request gets the server_error object, got {status} {body}")
        try:
            server.proc.wait(STEP_TIMEOUT + 15)
        except subprocess.TimeoutExpired:
            pass
        check(server.proc.poll() is not None, f"{name}: the job ended")
        return to_503, stream, server, t0
    finally:
        if worker is not None:
            try:
                os.kill(worker, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)


def check_stream_end(name, stream, t0):
    """The stream's last events are an error and [DONE], and the chunked body ended properly; returns the delay
    from t0 to the error event."""
    check(stream.framing_error is None and stream.clean_end,
          f"{name}: the chunked body ends with its last chunk ({stream.framing_error})")
    tail = [e for _, e in stream.events[-2:]]
    ok = len(tail) == 2 and tail[1] == "[DONE]" and isinstance(tail[0], dict) and \
        tail[0].get("error", {}).get("type") == "server_error"
    check(ok, f"{name}: the stream ends with an error event and [DONE], got {tail}")
    return stream.events[-2][0] - t0 if ok else None


# A stopped rank: the step watchdog.
to_503, stream, server, t0 = scenario("stopped rank", ["--tp", "2"], signal.SIGSTOP)
log = "".join(server.log)
# The watchdog's clock starts when the last step before the stop finished (up to a 50 ms step before it).
check(to_503 is not None and STEP_TIMEOUT - 0.5 <= to_503 <= STEP_TIMEOUT + 2,
      f"stopped rank: /health 503 {to_503} s after SIGSTOP, want within [{STEP_TIMEOUT - 0.5}, {STEP_TIMEOUT + 2}]")
to_error = check_stream_end("stopped rank", stream, t0)
check(server.proc.returncode not in (0, None), f"stopped rank: the job exits non-zero, got {server.proc.returncode}")
check("rank 1 (tp 1/2, pp 0/1) has not finished step" in log, f"stopped rank: the log names rank 1:\n{log}")
# Rank 1's own messages reached rank 0 before it stopped (the naming does not come from a record of zeros): rank
# 0 heard it receive a step (its last "finished" may still be in flight), and rank 0 itself has the step rank 1
# is named for.
m = re.search(r"has not finished step (\d+) .*\n.*progress by rank \(last step received/finished\): 0: (\d+)/(\d+), "
              r"1: (\d+)/(\d+)", log)
check(m and 1 <= int(m.group(4)) < int(m.group(1)) <= int(m.group(2)),
      f"stopped rank: rank 1's progress reached rank 0 ({m and m.groups()})")
print("".join(line for line in server.log if "has not finished" in line or "progress by rank" in line), end="")
print(f"stopped rank: /health 503 after {to_503} s, error event after {to_error} s "
      f"(--step-timeout {STEP_TIMEOUT}), exit code {server.proc.returncode}")

# A dead rank: mpirun's kill sequence.
to_503, stream, server, t0 = scenario("dead rank", ["--pp", "2"], signal.SIGKILL)
to_error = check_stream_end("dead rank", stream, t0)
check(to_error is not None and to_error < 1.5, f"dead rank: error event {to_error} s after the kill, want < 1.5 s "
      "(before mpirun's SIGKILL, 2 s after)")
check(to_503 is not None and to_503 < 1.5, f"dead rank: /health 503 {to_503} s after the kill, want < 1.5 s")
check(server.proc.returncode not in (0, None), f"dead rank: the job exits non-zero, got {server.proc.returncode}")
check("SIGCONT from the launcher" in "".join(server.log), "dead rank: rank 0 saw the launcher's kill sequence")
print(f"dead rank: /health 503 after {to_503} s, error event after {to_error} s, exit code {server.proc.returncode}")
check.exit()
