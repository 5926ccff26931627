#!/usr/bin/env python3
"""`lattice serve --device cuda` answers a streamed chat request: the server says it runs on cuda:0, the stream
is well-formed server-sent events (role, content deltas, a finish reason, [DONE]), and its text equals the CPU
backend's answer to the same greedy request (f32 on both, whose logits agree to ~1e-6 relative: far below the
top-1 margins of a 16-token greedy answer, so the tokens match). A request whose logits the GPU sampler cannot
sample (repetition_penalty 1e-40 makes a seen token's logit +inf) gets the CPU backend's 500, and the GPU server
then answers the chat request as before.
usage: check_serve.py LATTICE DATA_DIR      (python3 standard library only)"""
import http.client
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "serve"))
from serve_fixture import Server, sse_events  # noqa: E402  (starts lattice serve on a free port and always stops it)

lattice, data = sys.argv[1], sys.argv[2]
model = f"{data}/tiny-llama/f32"
CHAT = {"model": "f32", "messages": [{"role": "user", "content": "Tell me about the sea."}], "max_tokens": 16, "ignore_eos": True,
        "temperature": 0}
BAD = {"prompt": "Hi", "max_tokens": 4, "temperature": 0, "repetition_penalty": 1e-40}
problems = []


def check(cond, what):
    if not cond:
        problems.append(what)
        print("FAIL:", what, flush=True)


def streamed_chat(server):
    """(text, finish reason) of the streamed chat request, checking the stream's shape on the way."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/v1/chat/completions", json.dumps({**CHAT, "stream": True}),
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    check(resp.status == 200, f"stream status {resp.status}")
    check(resp.getheader("Content-Type", "").startswith("text/event-stream"), "SSE content type")
    events = sse_events(resp)
    conn.close()
    check(len(events) >= 3 and events[-1] == "[DONE]", f"a stream of chunks ending in [DONE], got {events}")
    chunks = [e for e in events if isinstance(e, dict)]
    check(all(e.get("object") == "chat.completion.chunk" for e in chunks), "every event is a chat.completion.chunk")
    deltas = [e["choices"][0]["delta"] for e in chunks if e.get("choices")]
    check(bool(deltas) and deltas[0].get("role") == "assistant", "the first delta names the assistant role")
    finish = [e["choices"][0].get("finish_reason") for e in chunks if e.get("choices")]
    text = "".join(d.get("content") or "" for d in deltas)
    check(any(content for content in (d.get("content") for d in deltas)), "at least one content delta")
    return text, next((f for f in reversed(finish) if f), None)


with Server(lattice, model, "--device", "cuda", "--dtype", "f32", "--grpc-port", "-1", "--kv-cache-blocks", "64") as gpu:
    log = "".join(gpu.log)
    check("cuda:0" in log, "the start-up log names the GPU (cuda:0):\n" + log)
    gpu_text, gpu_finish = streamed_chat(gpu)
    print(f"GPU streamed: {gpu_text!r} (finish {gpu_finish})", flush=True)
    gpu_bad = gpu.request("POST", "/v1/completions", BAD)
    check(streamed_chat(gpu) == (gpu_text, gpu_finish), "after a request with non-finite logits, the same answer")
with Server(lattice, model, "--device", "cpu", "--grpc-port", "-1", "--kv-cache-blocks", "64") as cpu:
    status, body = cpu.request("POST", "/v1/chat/completions", CHAT, {"Content-Type": "application/json"})
    check(status == 200, f"CPU chat status {status}: {body}")
    cpu_text = body["choices"][0]["message"]["content"] if status == 200 else None
    cpu_finish = body["choices"][0]["finish_reason"] if status == 200 else None
    print(f"CPU:          {cpu_text!r} (finish {cpu_finish})", flush=True)
    cpu_bad = cpu.request("POST", "/v1/completions", BAD)
check(gpu_bad[0] == 500 and gpu_bad == cpu_bad, f"non-finite logits: GPU {gpu_bad}, CPU {cpu_bad}")
check((gpu_text, gpu_finish) == (cpu_text, cpu_finish), "the GPU's streamed answer equals the CPU backend's")
print(f"{0 if problems else 1} passed, {1 if problems else 0} failed")
sys.exit(1 if problems else 0)
