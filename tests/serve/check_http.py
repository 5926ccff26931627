#!/usr/bin/env python3
"""lattice serve over HTTP, end to end on the tiny-llama fixture: completions (JSON and streamed) agree with
`lattice generate`, chat renders the ChatML default, stop strings and ids, n, logprobs, every error status
(400 naming the field, 401, 404, 413, 429, 503 while loading), a disconnecting client frees its KV blocks,
/metrics parses, and SIGTERM stops the server cleanly.
usage: check_http.py LATTICE DATA_DIR"""
import http.client
import json
import subprocess
import sys
import time

from serve_fixture import Checks, Server, parse_metrics, sse_events

lattice, data = sys.argv[1], sys.argv[2]
model = f"{data}/tiny-llama/f32"
KEY = {"Authorization": "Bearer sekrit"}
check = Checks()


def run(*args):
    return subprocess.run([lattice, *args], capture_output=True, text=True, check=True, timeout=60).stdout


def generate(prompt, n, *extra):
    """generate --json, with "text" replaced by what generate streams for one text prompt (the server also
    detokenizes incrementally; decode() differs from it on ill-formed byte runs)."""
    common = ["generate", "--model", model, "--prompt", prompt, "--max-tokens", str(n), "--temperature", "0", *extra]
    out = json.loads(run(*common, "--json"))
    streamed = subprocess.run([lattice, *common], capture_output=True, check=True, timeout=60).stdout
    out["text"] = streamed[:streamed.rindex(b"\n[0] prompt_tokens=")].decode()
    return out


def stream(server, path, body, headers=KEY, read_events=None):
    """The SSE data payloads of a streamed request (all of them, or the first read_events, then hang up)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **headers})
    resp = conn.getresponse()
    check(resp.status == 200, f"stream status {resp.status}")
    check(resp.getheader("Content-Type", "").startswith("text/event-stream"), "SSE content type")
    events = sse_events(resp, read_events)
    resp.close()
    conn.close()
    return events


def metric(server, name, **labels):
    _, text = server.request("GET", "/metrics")
    return parse_metrics(text)[1].get((name, frozenset(labels.items())), 0.0)


def error_of(status, body, expected_status, param=None):
    ok = status == expected_status and isinstance(body, dict) and set(body.get("error", {})) == {"message", "type", "param", "code"}
    check(ok, f"expected an OpenAI error {expected_status}, got {status} {body}")
    if ok and param is not None:
        check(body["error"]["param"] == param, f"error param {body['error']['param']!r} != {param!r} ({body['error']['message']})")


# 503 while loading, then ready.
server = Server(lattice, model, "--grpc-port", "-1", "--api-key", "sekrit", "--max-pending", "4", "--max-body-kb", "64",
                "--kv-cache-blocks", "64", env={"LATTICE_SERVE_LOAD_DELAY_MS": "1500", "LATTICE_SERVE_STEP_DELAY_MS": "10"},
                wait_ready=False)
try:
    status, body = server.request("GET", "/health")
    error_of(status, body, 503)
    status, body = server.request("POST", "/v1/completions", {"prompt": "hi"}, KEY)
    error_of(status, body, 503)
    check(server.wait_ready(60), "server became ready")
    status, body = server.request("GET", "/health")
    check(status == 200 and body == {"status": "ok"}, f"/health after load: {status} {body}")

    # Authentication.
    error_of(*server.request("GET", "/v1/models"), 401)
    error_of(*server.request("GET", "/v1/models", headers={"Authorization": "Bearer wrong"}), 401)
    status, body = server.request("GET", "/v1/models", headers=KEY)
    check(status == 200 and body["data"][0]["id"] == "f32" and body["data"][0]["max_model_len"] == 512, f"/v1/models {body}")

    # Completions agree with lattice generate (greedy), with usage.
    ref = generate("Hello world", 12, "--ignore-eos", "--logprobs", "2")
    req = {"model": "f32", "prompt": "Hello world", "max_tokens": 12, "temperature": 0, "ignore_eos": True}
    status, body = server.request("POST", "/v1/completions", req, KEY)
    check(status == 200 and body["choices"][0]["text"] == ref["text"], f"completion text {body} vs {ref['text']!r}")
    check(body["usage"] == {"prompt_tokens": ref["prompt_tokens"], "completion_tokens": 12, "total_tokens": ref["prompt_tokens"] + 12,
                            "prompt_tokens_details": {"cached_tokens": 0}},
          f"usage {body['usage']}")
    check(body["choices"][0]["finish_reason"] == "length" and body["object"] == "text_completion", "finish length")

    # Streaming: the chunks add up to the same text; include_usage adds a last usage chunk; ends with [DONE].
    events = stream(server, "/v1/completions", {**req, "stream": True, "stream_options": {"include_usage": True}})
    check(events[-1] == "[DONE]", "stream ends with [DONE]")
    chunks = [e for e in events[:-1] if e["choices"]]
    check("".join(c["choices"][0]["text"] for c in chunks) == ref["text"], "streamed text equals the JSON text")
    check(chunks[-1]["choices"][0]["finish_reason"] == "length", "last chunk has the finish reason")
    check(events[-2]["usage"]["completion_tokens"] == 12 and events[-2]["choices"] == [], f"usage chunk {events[-2]}")

    # Token-id prompts, stop token ids and stop strings.
    ids_prompt = [int(x) for x in run("tokenize", "--model", model, "--text", "Hello world").split(",")]
    status, body = server.request("POST", "/v1/completions", {**req, "prompt": ids_prompt}, KEY)
    check(body["choices"][0]["text"] == ref["text"], "token-id prompt gives the same text")
    stop_id = ref["tokens"][3]
    status, body = server.request("POST", "/v1/completions", {**req, "stop_token_ids": [stop_id]}, KEY)
    first = ref["tokens"].index(stop_id)
    check(body["choices"][0]["finish_reason"] == "stop" and body["usage"]["completion_tokens"] == first + 1,
          f"stop id after {first + 1} tokens: {body}")
    text = ref["text"]
    stop_str = text[len(text) // 2:len(text) // 2 + 2] if "\ufffd" not in text[len(text) // 2:len(text) // 2 + 2] else text[1:2]
    status, body = server.request("POST", "/v1/completions", {**req, "stop": [stop_str]}, KEY)
    check(body["choices"][0]["text"] == text[:text.index(stop_str)] and body["choices"][0]["finish_reason"] == "stop",
          f"stop string {stop_str!r}: {body['choices'][0]} vs {text!r}")
    events = stream(server, "/v1/completions", {**req, "stop": stop_str, "stream": True})
    check("".join(e["choices"][0]["text"] for e in events[:-1]) == text[:text.index(stop_str)], "streamed stop string")

    # logprobs: the model's log-probabilities, as generate reports them.
    status, body = server.request("POST", "/v1/completions", {**req, "logprobs": 2}, KEY)
    lp = body["choices"][0]["logprobs"]
    check(len(lp["token_logprobs"]) == 12 and all(len(t) <= 2 for t in lp["top_logprobs"]), "logprobs shape")
    check(all(abs(a - r[0]["logprob"]) < 1e-4 for a, r in zip(lp["token_logprobs"], ref["logprobs"])), "logprobs match generate")

    # n and seeds: n choices, each max_tokens long, seeded runs repeat.
    sampled = {"prompt": "Hello world", "max_tokens": 6, "n": 3, "seed": 7, "ignore_eos": True, "temperature": 1.0}
    status, a = server.request("POST", "/v1/completions", sampled, KEY)
    status, b = server.request("POST", "/v1/completions", sampled, KEY)
    check(len(a["choices"]) == 3 and a["usage"]["completion_tokens"] == 18, f"n=3 {a.get('usage')}")
    check([c["text"] for c in a["choices"]] == [c["text"] for c in b["choices"]], "same seed, same choices")

    # Streamed n=2: chunks for both choices, each ending with its finish reason.
    events = stream(server, "/v1/completions", {**sampled, "n": 2, "stream": True})
    finished = {e["choices"][0]["index"]: e["choices"][0]["finish_reason"] for e in events[:-1] if e["choices"][0]["finish_reason"]}
    check(finished == {0: "length", 1: "length"}, f"streamed n=2 finish reasons {finished}")

    # Chat with the ChatML default (the fixture has no chat_template).
    chatml = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
    chat_ids = [int(x) for x in run("tokenize", "--model", model, "--text", chatml, "--no-special").split(",")]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    chat_req = {"messages": messages, "max_tokens": 8, "temperature": 0, "ignore_eos": True}
    status, body = server.request("POST", "/v1/chat/completions", chat_req, KEY)
    status2, same = server.request("POST", "/v1/completions", {**req, "prompt": chat_ids, "max_tokens": 8}, KEY)
    check(status == 200 and body["object"] == "chat.completion" and body["usage"]["prompt_tokens"] == len(chat_ids),
          f"chat usage {body.get('usage')} vs {len(chat_ids)} ChatML tokens")
    check(body["choices"][0]["message"] == {"role": "assistant", "content": same["choices"][0]["text"]}, "chat = ChatML completion")
    events = stream(server, "/v1/chat/completions", {**chat_req, "stream": True})
    check(events[0]["choices"][0]["delta"].get("role") == "assistant", "first chat chunk carries the role")
    check("".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1]) == same["choices"][0]["text"], "streamed chat text")
    status, body = server.request("POST", "/v1/chat/completions", {**chat_req, "logprobs": True, "top_logprobs": 2}, KEY)
    content = body["choices"][0]["logprobs"]["content"]
    check(len(content) == 8 and all(len(c["top_logprobs"]) == 2 for c in content), "chat logprobs")

    # 400s name the field; 404 for another model; 413 over the body limit.
    error_of(*server.request("POST", "/v1/completions", b"{not json", KEY), 400)
    for field, value in [("temperature", -1), ("top_p", 0), ("n", 0), ("max_tokens", "x"), ("top_k", 1.5),
                         ("stop", [""]), ("presence_penalty", 3), ("seed", -1), ("logprobs", 50), ("stream", "yes")]:
        error_of(*server.request("POST", "/v1/completions", {"prompt": "hi", field: value}, KEY), 400, field)
    error_of(*server.request("POST", "/v1/completions", {"max_tokens": 3}, KEY), 400, "prompt")
    error_of(*server.request("POST", "/v1/chat/completions", {"messages": []}, KEY), 400, "messages")
    error_of(*server.request("POST", "/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}, KEY), 400, "messages[0].role")
    error_of(*server.request("POST", "/v1/completions", {"prompt": [1] * 600}, KEY), 400, "prompt")
    error_of(*server.request("POST", "/v1/completions", {"prompt": [1, 9999]}, KEY), 400, "prompt")
    error_of(*server.request("POST", "/v1/completions", {"prompt": "hi", "model": "gpt-4"}, KEY), 404, "model")
    error_of(*server.request("POST", "/v1/completions", {"prompt": "x" * 100000}, KEY), 413)

    # A client that hangs up mid-stream cancels: its sequence leaves the batch and its blocks are freed.
    tokens_before = metric(server, "lattice_generation_tokens_total")
    long_req = {"prompt": "Hello world", "max_tokens": 400, "ignore_eos": True, "stream": True}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/v1/completions", json.dumps(long_req), {"Content-Type": "application/json", **KEY})
    resp = conn.getresponse()
    for _ in range(6):
        resp.fp.readline()
    check(metric(server, "lattice_running_sequences") == 1 and metric(server, "lattice_kv_cache_usage_percent") > 0,
          "a streaming request holds KV blocks")
    hung_up = time.time()
    resp.close()  # the response owns the socket (the server closes connections after each response)
    conn.close()
    while time.time() - hung_up < 5 and metric(server, "lattice_kv_cache_usage_percent") > 0:
        time.sleep(0.05)
    freed_after = time.time() - hung_up
    generated = metric(server, "lattice_generation_tokens_total") - tokens_before
    check(metric(server, "lattice_kv_cache_usage_percent") == 0 and metric(server, "lattice_running_sequences") == 0,
          "blocks freed after the client left")
    check(freed_after < 2.0 and generated < 300, f"cancelled early: {generated} of 400 tokens, freed {freed_after:.2f}s after hang-up")

    # The same for a non-streamed request: past a second it gets a chunked body led by heartbeat spaces, so a
    # client that leaves is noticed within about a second.
    import socket
    tokens_before = metric(server, "lattice_generation_tokens_total")
    body = json.dumps({**long_req, "stream": False, "max_tokens": 480}).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekrit\r\n"
                 b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    time.sleep(1.3)
    check(metric(server, "lattice_running_sequences") == 1, "the non-streamed request is running")
    sock.close()
    hung_up = time.time()
    while time.time() - hung_up < 5 and metric(server, "lattice_running_sequences") > 0:
        time.sleep(0.05)
    # Heartbeats go out every second and the first write after a hang-up may still succeed: up to ~2 s.
    generated = metric(server, "lattice_generation_tokens_total") - tokens_before
    check(metric(server, "lattice_running_sequences") == 0 and time.time() - hung_up < 3.0 and generated < 480,
          f"non-streamed request cancelled {time.time() - hung_up:.2f}s after hang-up, {generated} of 480 tokens")
    status, body = server.request("POST", "/v1/completions", {"prompt": "Hello world", "max_tokens": 150, "ignore_eos": True}, KEY)
    check(status == 200 and body["usage"]["completion_tokens"] == 150, "a long non-streamed request still parses as JSON")

    # 429 when the pending sequences would pass --max-pending (4): hold 4 streaming, then one more.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/v1/completions", json.dumps({**long_req, "n": 4}), {"Content-Type": "application/json", **KEY})
    resp = conn.getresponse()
    resp.fp.readline()
    error_of(*server.request("POST", "/v1/completions", {"prompt": "hi", "max_tokens": 2}, KEY), 429)
    resp.close()
    conn.close()

    # /metrics: valid exposition, a TYPE for every family, cumulative histograms, statuses counted.
    status, text = server.request("GET", "/metrics")
    families, samples = parse_metrics(text)
    names = {name for name, _ in samples}
    for fam in ["lattice_requests_total", "lattice_queue_length", "lattice_running_sequences", "lattice_waiting_sequences",
                "lattice_batch_size", "lattice_prompt_tokens_total", "lattice_generation_tokens_total",
                "lattice_time_to_first_token_seconds", "lattice_inter_token_latency_seconds",
                "lattice_e2e_request_latency_seconds", "lattice_kv_cache_usage_percent", "lattice_preemptions_total",
                "lattice_step_time_seconds"]:
        check(fam in families and "TYPE" in families[fam], f"metric family {fam} declared")
    ttft = sorted((dict(l).get("le"), v) for (n, l), v in samples.items() if n == "lattice_time_to_first_token_seconds_bucket")
    counts = [v for le, v in sorted(ttft, key=lambda x: float("inf") if x[0] == "+Inf" else float(x[0]))]
    check(counts == sorted(counts) and counts[-1] == samples[("lattice_time_to_first_token_seconds_count", frozenset())],
          "TTFT buckets are cumulative and end at the count")
    for code in ["200", "400", "401", "404", "413", "429", "503"]:
        check(any(n == "lattice_requests_total" and dict(l).get("status") == code for n, l in samples), f"requests_total status={code}")
finally:
    code = server.stop()
check(code == 0, f"SIGTERM exit code {code}")
check(any("stopped" in line for line in server.log), "server logged its shutdown")

# A KV cache of 16 blocks (256 tokens) cannot hold 4 x (11 + 100) tokens at once: sequences get preempted,
# recomputed, and still finish with all their tokens; the counter shows it and the cache ends empty.
with Server(lattice, model, "--grpc-port", "-1", "--kv-cache-blocks", "16") as small:
    status, body = small.request("POST", "/v1/completions", {"prompt": "Hello world", "max_tokens": 100, "n": 4,
                                                              "ignore_eos": True, "seed": 1})
    check(status == 200 and [c["finish_reason"] for c in body["choices"]] == ["length"] * 4 and
          body["usage"]["completion_tokens"] == 400, f"preempted choices finish: {body.get('usage')}")
    check(metric(small, "lattice_preemptions_total") > 0, "preemptions counted")
    check(metric(small, "lattice_kv_cache_usage_percent") == 0, "cache empty afterwards")
# A checkpoint without tokenizer.json: the HTTP API, which answers in text, says why it cannot serve it.
import os
import tempfile
with tempfile.TemporaryDirectory() as bare:
    for name in ("config.json", "model.safetensors"):
        os.symlink(os.path.abspath(f"{model}/{name}"), f"{bare}/{name}")
    with Server(lattice, bare, "--grpc-port", "-1") as no_tok:
        status, body = no_tok.request("POST", "/v1/completions", {"prompt": [1, 2, 3]})
        error_of(status, body, 400, "prompt")
        check("tokenizer.json" in body["error"]["message"], f"names the missing tokenizer: {body}")

check.exit()
