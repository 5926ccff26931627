#!/usr/bin/env python3
"""One request the engine cannot continue fails alone (issue 12, defect 1), on the tiny-llama fixture:
  non-finite  repetition_penalty 1e-40 turns a seen token's positive logit into +inf: that request gets HTTP 500
              server_error naming the position (streamed: an error event, then [DONE]), while a greedy request
              running beside it gives the tokens it gives alone, and the server then answers /health and new
              requests. repetition_penalty 3e38 only sends seen tokens' negative logits to -inf: it completes.
  ranges      sampling parameters outside vLLM's ranges are 400 invalid_request_error naming the field.
usage: check_request_errors.py LATTICE DATA_DIR"""
import json
import re
import sys
import threading
import urllib.error
import urllib.request

from serve_fixture import Checks, Server, sse_events

lattice, data = sys.argv[1], sys.argv[2]
check = Checks()
NON_FINITE = re.compile(r"^the model produced non-finite logits at position \d+ "
                        r"\(a logit is \+inf after sampling penalties\)$")


def stream(server, body):
    """(status, SSE data payloads) of a streamed completion."""
    req = urllib.request.Request(server.url("/v1/completions"), json.dumps({**body, "stream": True}).encode(),
                                 {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, sse_events(r)
    except urllib.error.HTTPError as e:
        return e.code, [e.read().decode()]


with Server(lattice, f"{data}/tiny-llama/f32", "--grpc-port", "-1") as server:
    # The request, as is: sampleable (some -inf logits), so it completes.
    huge = {"prompt": "Hi", "max_tokens": 4, "repetition_penalty": 3e38}
    status, body = server.request("POST", "/v1/completions", huge)
    check(status == 200 and body["choices"][0]["finish_reason"] == "length" and body["usage"]["completion_tokens"] == 4,
          f"repetition_penalty 3e38 completes: {status} {body}")

    greedy = {"prompt": [1, 15, 27, 300, 42], "max_tokens": 48, "temperature": 0, "ignore_eos": True}
    status, alone = server.request("POST", "/v1/completions", greedy)
    check(status == 200, f"a greedy request alone: {status} {alone}")
    beside = {}
    worker = threading.Thread(target=lambda: beside.update(zip(("status", "body"),
                                                               server.request("POST", "/v1/completions", greedy))))
    worker.start()
    bad = {"prompt": "Hi", "max_tokens": 4, "repetition_penalty": 1e-40}
    status, body = server.request("POST", "/v1/completions", bad)
    error = body.get("error", {}) if isinstance(body, dict) else {}
    check(status == 500 and error.get("type") == "server_error" and NON_FINITE.match(error.get("message", "")),
          f"repetition_penalty 1e-40: 500 server_error naming the position, got {status} {body}")
    status, events = stream(server, bad)
    errors = [e for e in events[:-1] if "error" in e]
    check(status == 200 and events[-1] == "[DONE]" and len(errors) == 1 and events[-2] is errors[0] and
          errors[0]["error"]["type"] == "server_error" and NON_FINITE.match(errors[0]["error"]["message"]),
          f"streamed: an error event, then [DONE]; got {status} {events}")
    worker.join(60)
    check(beside.get("status") == 200 and beside["body"]["choices"][0]["text"] == alone["choices"][0]["text"] and
          beside["body"]["usage"]["completion_tokens"] == 48,
          f"the request beside the failures gives what it gives alone: {beside}")
    status, body = server.request("GET", "/health")
    check(status == 200, f"/health after the failures: {status} {body}")
    status, body = server.request("POST", "/v1/completions", greedy)
    check(status == 200 and body["choices"][0]["text"] == alone["choices"][0]["text"],
          f"a new request after the failures: {status} {body}")
    check(sum("failed: the model produced non-finite logits" in line for line in server.log) == 2,
          "the server log names each failed request:\n" + "".join(server.log))

    for field, value in [("temperature", -0.5), ("top_p", 0), ("top_p", 1.5), ("top_k", -2), ("min_p", -0.1),
                         ("min_p", 1.5), ("presence_penalty", 2.5), ("frequency_penalty", -2.5),
                         ("repetition_penalty", 0), ("repetition_penalty", -1), ("repetition_penalty", 1e39)]:
        status, body = server.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2, field: value})
        error = body.get("error", {}) if isinstance(body, dict) else {}
        check(status == 400 and error.get("type") == "invalid_request_error" and error.get("param") == field and
              field in error.get("message", ""), f"{field} = {value}: 400 naming the field, got {status} {body}")
    check(server.stop() == 0, "the server stops cleanly:\n" + "".join(server.log))
check.exit()
