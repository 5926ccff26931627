#!/usr/bin/env python3
"""The exact response cache through lattice serve (--response-cache memory): a repeated greedy request is a
hit (header X-Lattice-Cache, same body, the engine generates nothing), streamed or not; sampled requests
without a seed are never cached; entries expire after --response-cache-ttl; off by default. Then, with a
redis-server started here on a free loopback port (that part is skipped, saying so, where redis-server is
not installed): two servers share the Redis cache, and when Redis dies they keep answering (misses) and
report it in /metrics.
usage: check_response_cache.py LATTICE DATA_DIR"""
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

from serve_fixture import Checks, Server, parse_metrics

lattice, data = sys.argv[1], sys.argv[2]
model = f"{data}/tiny-llama/f32"
check = Checks()


def post(server, body):
    """(X-Lattice-Cache header or None, parsed body or the SSE events)."""
    req = urllib.request.Request(server.url("/v1/completions"), data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read().decode()
        header = r.headers.get("X-Lattice-Cache")
    if body.get("stream"):
        return header, [l[6:] for l in text.splitlines() if l.startswith("data: ")]
    return header, json.loads(text)


def metric(server, name, labels=()):
    _, samples = parse_metrics(server.request("GET", "/metrics")[1])
    return samples.get((name, frozenset(labels)), 0)


greedy = {"prompt": [5, 17, 99, 260, 7, 41], "max_tokens": 8, "temperature": 0, "ignore_eos": True, "logprobs": 2}
server = Server(lattice, model, "--grpc-port", "-1", "--response-cache", "memory", "--response-cache-ttl", "3")
try:
    header, first = post(server, greedy)
    check(header == "miss", f"first request: {header}")
    generated = metric(server, "lattice_generation_tokens_total")
    header, again = post(server, greedy)
    check(header == "hit", f"second request: {header}")
    check(again["choices"] == first["choices"] and again["usage"] == first["usage"], "the hit returns the stored body")
    check(again["id"] != first["id"], "with a fresh id")
    check(metric(server, "lattice_generation_tokens_total") == generated, "a hit does not run the engine")

    header, events = post(server, {**greedy, "stream": True, "stream_options": {"include_usage": True}})
    check(header == "hit" and events[-1] == "[DONE]", f"streamed hit: {header} {events[-1:]}")
    chunks = [json.loads(e) for e in events[:-1]]
    check("".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == first["choices"][0]["text"],
          "the streamed hit carries the same text")
    check(chunks[-1]["usage"] == first["usage"], "and the usage chunk")
    check(metric(server, "lattice_response_cache_requests_total", [("result", "hit")]) == 2, "two hits counted")

    header, _ = post(server, {**greedy, "temperature": 0.8})
    check(header is None, f"sampled without a seed is not cacheable: {header}")
    header, _ = post(server, {**greedy, "temperature": 0.8, "seed": 3})
    check(header == "miss", f"seeded sampling is: {header}")
    header, _ = post(server, {**greedy, "max_tokens": 7})
    check(header == "miss", f"another max_tokens is another key: {header}")

    time.sleep(3.2)
    header, _ = post(server, greedy)
    check(header == "miss", f"expired after the TTL: {header}")
finally:
    server.stop()

plain = Server(lattice, model, "--grpc-port", "-1")
try:
    header, _ = post(plain, greedy)
    header2, _ = post(plain, greedy)
    check(header is None and header2 is None, "off by default")
finally:
    plain.stop()

redis_binary = shutil.which("redis-server")
if not redis_binary:
    print("SKIP redis part: redis-server is not installed (scripts/setup installs it)")
else:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        redis_port = s.getsockname()[1]
    redis = subprocess.Popen([redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    servers = []
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", redis_port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        url = f"redis://127.0.0.1:{redis_port}/0"
        servers = [Server(lattice, model, "--grpc-port", "-1", "--response-cache", url) for _ in range(2)]
        a, b = servers
        check(metric(a, "lattice_response_cache_available") == 1, "redis available")
        header, first = post(a, greedy)
        check(header == "miss", f"redis: first request {header}")
        header, shared = post(b, greedy)
        check(header == "hit" and shared["choices"] == first["choices"], f"redis: the other server hits: {header}")
        redis.kill()
        redis.wait()
        for server in servers:
            status, body = server.request("POST", "/v1/completions", greedy)
            check(status == 200 and body["choices"] == first["choices"], f"redis down: still served ({status})")
        header, _ = post(a, greedy)
        check(header == "miss", f"redis down: a miss, not an error ({header})")
        check(metric(a, "lattice_response_cache_available") == 0, "redis down: /metrics says so")
        check(metric(a, "lattice_response_cache_errors_total") >= 1, "redis down: errors counted")
        deadline = time.time() + 5  # the log is read by a thread
        while time.time() < deadline and not any("serving without the cache" in line for line in a.log):
            time.sleep(0.1)
        check(any("serving without the cache" in line for line in a.log), "redis down: the log says so")
    finally:
        for server in servers:
            server.stop()
        if redis.poll() is None:
            redis.kill()
            redis.wait()
check.exit()
