#!/usr/bin/env python3
"""lattice serve under load, on the tiny-llama fixture:
  concurrency  50 concurrent streaming clients all complete, each with the text it gets alone;
  overload     2x the queue bound at once: the accepted complete, the rest get 429, nothing is lost or hangs,
               and the server still answers afterwards;
  fuzz         random JSON shapes and random bytes as request bodies for a bounded time: never a 5xx or
               a crash.
usage: check_load.py LATTICE DATA_DIR"""
import http.client
import json
import random
import sys
import threading
import time

from serve_fixture import Checks, Server, sse_events

lattice, data = sys.argv[1], sys.argv[2]
model = f"{data}/tiny-llama/f32"
check = Checks()  # thread-safe


def stream(server, body):
    """(status, streamed text, saw [DONE]) of one streamed completion."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    conn.request("POST", "/v1/completions", json.dumps({**body, "stream": True}), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        payload = resp.read().decode()
        conn.close()
        return resp.status, payload, False
    events = sse_events(resp)
    conn.close()
    text = "".join(e["choices"][0]["text"] for e in events if e != "[DONE]" and e["choices"])
    return 200, text, events[-1:] == ["[DONE]"]


def in_parallel(bodies, server):
    results = [None] * len(bodies)

    def worker(i):
        try:
            results[i] = stream(server, bodies[i])
        except Exception as e:  # a hang or a dropped connection is a failure, reported below
            results[i] = (None, repr(e), False)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return results


# Concurrency: 50 streams at once equal each request run alone (greedy and seeded sampling).
server = Server(lattice, model, "--grpc-port", "-1", "--max-pending", "64")
try:
    bodies = [{"prompt": f"client {i} says", "max_tokens": 12, "ignore_eos": True,
               "temperature": 0 if i % 2 else 0.8, "seed": 100 + i} for i in range(50)]
    alone = [stream(server, b) for b in bodies]
    together = in_parallel(bodies, server)
    for i, (a, t) in enumerate(zip(alone, together)):
        check(t[0] == 200 and t[2], f"client {i}: status {t[0]}, completed {t[2]}: {t[1]!r}")
        check(t[1] == a[1], f"client {i}: concurrent text {t[1]!r} != alone {a[1]!r}")
finally:
    check(server.stop() == 0, "server stopped cleanly after the concurrency run")

# Overload: a queue bound of 8 and 16 requests at once (steps slowed so that they overlap).
server = Server(lattice, model, "--grpc-port", "-1", "--max-pending", "8",
                env={"LATTICE_SERVE_STEP_DELAY_MS": "20"})
try:
    bodies = [{"prompt": f"overload {i}", "max_tokens": 16, "ignore_eos": True, "temperature": 0} for i in range(16)]
    results = in_parallel(bodies, server)
    accepted = [r for r in results if r[0] == 200]
    rejected = [r for r in results if r[0] == 429]
    check(len(accepted) + len(rejected) == 16, f"every request answered 200 or 429: {[r[0] for r in results]}")
    check(len(accepted) >= 8, f"{len(accepted)} accepted (the bound is 8)")
    check(len(rejected) >= 1, "requests over the bound are rejected")
    check(all(r[2] for r in accepted), "every accepted request completed")
    check(all(json.loads(r[1])["error"]["code"] == 429 or "error" in json.loads(r[1]) for r in rejected),
          "429s carry an OpenAI error body")
    status, body = server.request("POST", "/v1/completions", {"prompt": "after", "max_tokens": 2})
    check(status == 200 and body["usage"]["completion_tokens"] == 2, f"server answers after the overload: {status}")
finally:
    check(server.stop() == 0, "server stopped cleanly after the overload run")

# Fuzz: random bodies for a bounded time; 4xx is fine, 5xx or a dead server is not.
server = Server(lattice, model, "--grpc-port", "-1", "--max-pending", "64")
rng = random.Random(20261121)
keys = ["model", "prompt", "messages", "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "n",
        "stream", "logprobs", "top_logprobs", "priority", "presence_penalty", "frequency_penalty", "repetition_penalty",
        "stop_token_ids", "stream_options", "role", "content", "ignore_eos"]


def random_value(depth=0):
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0: return None
    if kind == 1: return rng.choice([True, False])
    if kind == 2: return rng.choice([0, 1, 2, -1, 3, 7, 2**31, -2**63, 10**20])
    if kind == 3: return rng.choice([0.0, -0.5, 0.5, 1.0, 1e308, -1e-9])
    if kind == 4: return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(12)))
    if kind == 5: return rng.choice(["hi", "", "user", "assistant", "system"])
    if kind == 6: return [random_value(depth + 1) for _ in range(rng.randrange(4))]
    if kind == 7: return {rng.choice(keys): random_value(depth + 1) for _ in range(rng.randrange(4))}
    return [{"role": rng.choice(["user", "system", "tool", 3]), "content": random_value(depth + 1)}]


try:
    # Found by this loop: an explicit "stream": null once escaped validation as a 500.
    status, _ = server.request("POST", "/v1/completions", {"prompt": "hi", "max_tokens": 2, "stream": None})
    check(status == 200, f'"stream": null answered {status}')
    deadline, count, statuses = time.time() + 8, 0, {}
    while time.time() < deadline:
        path = rng.choice(["/v1/completions", "/v1/chat/completions"])
        if rng.random() < 0.2:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        else:
            body = {k: random_value() for k in rng.sample(keys, rng.randrange(1, 7))}
            if isinstance(body.get("max_tokens"), int) and body["max_tokens"] > 8:
                body["max_tokens"] = 8  # keep valid requests short
            body = json.dumps(body).encode()
        status, _ = server.request("POST", path, body, {"Content-Type": "application/json"}, timeout=60)
        statuses[status] = statuses.get(status, 0) + 1
        count += 1
        if status >= 500:
            check(False, f"fuzz body {body[:200]!r} on {path} gave {status}")
    check(count > 20, f"fuzz sent {count} bodies")
    status, _ = server.request("GET", "/health")
    check(status == 200, "server alive after fuzzing")
    print(f"fuzz: {count} bodies, statuses {statuses}")
finally:
    check(server.stop() == 0, "server stopped cleanly after fuzzing")

check.exit()
