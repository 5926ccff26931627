#!/usr/bin/env python3
"""Prefix caching through lattice serve on the tiny-llama fixture: a second request sharing a 96-token prefix
reports usage.prompt_tokens_details.cached_tokens = 96 (6 blocks of 16) and the same text as a server without
caching; /metrics counts the queries, hits, hit rate and cached blocks.
usage: check_prefix_cache.py LATTICE DATA_DIR"""
import random
import sys

from serve_fixture import Checks, Server, parse_metrics

lattice, data = sys.argv[1], sys.argv[2]
model = f"{data}/tiny-llama/f32"
check = Checks()


rng = random.Random(4)
prefix = [rng.randrange(3, 512) for _ in range(96)]
first = prefix + [rng.randrange(3, 512) for _ in range(4)]
second = prefix + [rng.randrange(3, 512) for _ in range(9)]


def completions(server):
    out = []
    for prompt in (first, second):
        status, body = server.request("POST", "/v1/completions",
                                      {"prompt": prompt, "max_tokens": 6, "temperature": 0, "ignore_eos": True})
        check(status == 200, f"status {status}: {body}")
        out.append(body)
    return out


cached = Server(lattice, model, "--grpc-port", "-1", "--kv-cache-blocks", "64")
plain = Server(lattice, model, "--grpc-port", "-1", "--kv-cache-blocks", "64", "--no-enable-prefix-caching")
try:
    a, b = completions(cached)
    x, y = completions(plain)
    details = [r["usage"].get("prompt_tokens_details") for r in (a, b, x, y)]
    check(details == [{"cached_tokens": 0}, {"cached_tokens": 96}, {"cached_tokens": 0}, {"cached_tokens": 0}],
          f"cached_tokens {details}")
    check([r["choices"][0]["text"] for r in (a, b)] == [r["choices"][0]["text"] for r in (x, y)],
          "the same text with and without caching")
    _, text = cached.request("GET", "/metrics")
    _, m = parse_metrics(text)
    value = lambda name: m.get((name, frozenset()))
    queries = len(first) + len(second)
    check(value("lattice_prefix_cache_queries_total") == queries, f"queries {value('lattice_prefix_cache_queries_total')}")
    check(value("lattice_prefix_cache_hits_total") == 96, f"hits {value('lattice_prefix_cache_hits_total')}")
    check(abs(value("lattice_prefix_cache_hit_rate") - 96 / queries) < 1e-9, "hit rate")
    # first computed 100 + 5 fed-back tokens: 6 full blocks; second (105 + 5) shares them and fills no 7th.
    check(value("lattice_prefix_cache_blocks") == 6, f"cached blocks {value('lattice_prefix_cache_blocks')}")
    check(value("lattice_prefix_cache_evictions_total") == 0, "no evictions")
    _, text = plain.request("GET", "/metrics")
    _, m = parse_metrics(text)
    check(value("lattice_prefix_cache_hits_total") == 0 and value("lattice_prefix_cache_blocks") == 0,
          "no caching: no hits, no cached blocks")
finally:
    cached.stop()
    plain.stop()
check.exit()
