#!/usr/bin/env python3
"""lattice serve against hostile or unlucky clients, on the tiny-llama fixture (loopback, bounded counts and
time). Each part is a regression test for a defect of issue 12 that took the server down or misled clients:
  depth     JSON nested 100k levels in a chat message, tools or chat_template_kwargs: 400, not a stack overflow
  padded    a model vocabulary padded past the tokenizer's: those ids decode to nothing, no abort
  body      --max-body-kb holds for chunked bodies (413 before the body ends); the API key is checked, and a
            wrong method (405) answered, before the body is read; a non-JSON Content-Type over 8 KB is parsed
  burst     250 connections at once are all answered (a real listen backlog)
  gauges    lattice_queue_length is 0 on an idle server
  drain     SIGTERM: an open stream gets its final chunk and [DONE]; /health says 503 meanwhile
  access    the key from $LATTICE_API_KEY or --api-key-file, any case of Bearer; without a key, foreign browser
            origins (403) and non-JSON POST bodies (415) are refused
usage: check_hardening.py LATTICE DATA_DIR"""
import http.client
import json
import signal
import socket
import sys
import tempfile
import threading
import time

from serve_fixture import Checks, Server, parse_metrics, sse_events, write_padded_vocab_model

lattice, data = sys.argv[1], sys.argv[2]
model = f"{data}/tiny-llama/f32"
KEY = {"Authorization": "Bearer sekrit"}
check = Checks()


def status_line_of(server, data, timeout=5):
    """Sends raw `data` on a new connection and returns the status line of the reply ("" when none comes
    within `timeout`, e.g. because the server waits for the rest of a body)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        reply = b""
        try:
            while b"\r\n" not in reply:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return reply.split(b"\r\n")[0].decode(errors="replace")


def stream_events(server, body, headers=KEY, on_first=None):
    """(status, SSE data payloads) of a streamed completion; `on_first` runs after the first event."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/v1/completions", json.dumps({**body, "stream": True}), {"Content-Type": "application/json", **headers})
    resp = conn.getresponse()
    def after(events):
        if on_first and len(events) == 1:
            on_first()
    try:
        events = sse_events(resp, on_event=after)
    finally:
        conn.close()
    return resp.status, events


def alive(server):
    status, _ = server.request("GET", "/health", timeout=10)
    return status == 200


def deep_json_text(levels):
    return "[" * levels + "]" * levels


server = Server(lattice, model, "--grpc-port", "-1", "--api-key", "sekrit", "--max-body-kb", "512")
try:
    # depth: nlohmann::json copies values recursively; a 100k-level body overflowed the handler's stack.
    deep = deep_json_text(100000)
    msg = '{"role": "user", "content": "hi"}'
    for where, body in [
            ("chat_template_kwargs", '{"messages": [%s], "chat_template_kwargs": {"x": %s}}' % (msg, deep)),
            ("tools", '{"messages": [%s], "tools": [%s]}' % (msg, deep)),
            ("a message field", '{"messages": [{"role": "user", "content": "hi", "name": %s}]}' % deep)]:  # 200 KB
        status, reply = server.request("POST", "/v1/chat/completions", body.encode(), KEY)
        check(status == 400 and "deeper than 64" in reply["error"]["message"], f"{where} nested 100k deep: {status} {str(reply)[:200]}")
    check(alive(server), "alive after deeply nested bodies")
    ok_depth = {"messages": [json.loads(msg)], "max_tokens": 2, "chat_template_kwargs": {"x": json.loads(deep_json_text(60))}}
    status, reply = server.request("POST", "/v1/chat/completions", ok_depth, KEY)
    check(status == 200, f"62 levels in all are accepted: {status} {str(reply)[:200]}")

    # body: a chunked body is refused once it passes --max-body-kb (512 KB), not read to its end: 544 KB are
    # sent and the body left open; a server that reads on waits for the rest and never answers.
    head = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekrit\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"  # 16 KB of JSON whitespace
    status_line = status_line_of(server, head + chunk * 34)
    check(" 413 " in status_line, f"chunked body over the limit: {status_line!r}")
    # ... and the rest of a refused body is never read, not even as garbage requests: 100 MB offered in one
    # newline-free chunk leave the server's memory as it was, and the connection closes under the sender.
    def rss_mb():
        with open(f"/proc/{server.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) >> 10

    before, sent = rss_mb(), 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + b"%x\r\n" % 100_000_000)
        deadline = time.time() + 20
        try:
            while sent < 100_000_000 and time.time() < deadline:
                sent += sock.send(b" " * (1 << 20))
        except OSError:
            pass
    check(sent < 50_000_000 and rss_mb() - before < 32,
          f"refused body: {sent >> 20} MB taken, server grew {rss_mb() - before} MB")
    # A chunked body under the limit still works.
    body = json.dumps({"prompt": "hi", "max_tokens": 2}).encode()
    status_line = status_line_of(server, head + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    check(" 200 " in status_line, f"small chunked body: {status_line!r}")
    # The API key is checked before the body: a wrong key with a body announced but not sent is refused.
    status_line = status_line_of(server, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
                                         b"Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n")
    check(" 401 " in status_line, f"wrong key, body not sent: {status_line!r} (the server waited for the body)")
    # A body sent as a form (curl -d) above 8 KB is parsed as the JSON it is, not refused with a 413.
    padded = json.dumps({"prompt": "hi", "max_tokens": 2}) + " " * 20000
    status, reply = server.request("POST", "/v1/completions", padded.encode(),
                                   {**KEY, "Content-Type": "application/x-www-form-urlencoded"})
    check(status == 200, f"20 KB form-typed JSON body with an API key: {status} {str(reply)[:200]}")
    # A wrong method on a known path is 405 with Allow, not 404.
    for method, path, allow in [("GET", "/v1/completions", "POST"), ("DELETE", "/v1/chat/completions", "POST"),
                                ("POST", "/health", "GET"), ("PUT", "/v1/models", "GET"),
                                ("OPTIONS", "/v1/completions", "POST")]:  # a browser's CORS preflight
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request(method, path, b"{}" if method not in ("GET", "OPTIONS") else None,
                     {**KEY, "Content-Type": "application/json"})
        resp = conn.getresponse()
        reply = json.loads(resp.read())
        check(resp.status == 405 and resp.getheader("Allow") == allow and reply["error"]["code"] == "method_not_allowed",
              f"{method} {path}: {resp.status} Allow={resp.getheader('Allow')} {reply}")
        conn.close()
    status, _ = server.request("GET", "/v1/nothing", headers=KEY)
    check(status == 404, f"unknown path still 404: {status}")

    # access: any case of the Bearer scheme.
    for scheme in ("bearer", "BEARER", "Bearer"):
        status, _ = server.request("GET", "/v1/models", headers={"Authorization": f"{scheme} sekrit"})
        check(status == 200, f"'{scheme} <key>': {status}")
    for header in ("Bearer sekri", "Bearer sekrit2", "Basic sekrit", "sekrit"):
        status, _ = server.request("GET", "/v1/models", headers={"Authorization": header})
        check(status == 401, f"Authorization {header!r}: {status}")

    # burst: 250 connections opened at once, each sending a request: every one is answered, and the kernel
    # dropped none for a full accept queue (TcpExt ListenOverflows, counted per network namespace). With
    # httplib's backlog of 5 it dropped SYNs, and their clients waited for retransmits (1 s, 3 s, ... past 20 s).
    def listen_overflows():
        with open("/proc/net/netstat") as f:
            names, values = [line.split() for line in f if line.startswith("TcpExt:")][:2]
        return int(values[names.index("ListenOverflows")])

    results, barrier = [], threading.Barrier(250)

    def one_client():
        barrier.wait()
        start = time.time()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
            conn.request("GET", "/health")
            status = conn.getresponse().status
            conn.close()
        except OSError as e:
            status = repr(e)
        results.append((status, time.time() - start))

    overflows = listen_overflows()
    threads = [threading.Thread(target=one_client) for _ in range(250)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    overflows = listen_overflows() - overflows
    statuses = [s for s, _ in results]
    slowest = max((d for _, d in results), default=0)
    check(len(results) == 250 and all(s == 200 for s in statuses), f"burst: {len(results)} answered, {[s for s in statuses if s != 200][:5]}")
    check(overflows == 0, f"burst: {overflows} connections dropped for a full accept queue (slowest answer {slowest:.2f}s)")
    print(f"burst: 250 answered, the slowest in {slowest:.2f}s", flush=True)

    # gauges: after requests, an idle server reports an empty queue.
    time.sleep(0.2)
    _, text = server.request("GET", "/metrics")
    samples = parse_metrics(text)[1]
    check(samples[("lattice_queue_length", frozenset())] == 0 and samples[("lattice_pending_sequences", frozenset())] == 0,
          f"idle queue length {samples[('lattice_queue_length', frozenset())]}")
finally:
    code = server.stop()
check(code == 0, f"exit code {code}")

# padded: greedy output made only of ids 512 and 513, which the 512-entry tokenizer does not have.
with tempfile.TemporaryDirectory() as padded_dir:
    write_padded_vocab_model(model, padded_dir, 1024)
    with Server(lattice, padded_dir, "--grpc-port", "-1") as server:
        req = {"prompt": "Hello", "max_tokens": 5, "temperature": 0, "ignore_eos": True}
        status, events = stream_events(server, req, headers={})
        check(status == 200 and events[-1] == "[DONE]" and events[-2]["choices"][0]["finish_reason"] == "length",
              f"streamed padded ids: {status} {events[-2:]}")
        check("".join(e["choices"][0]["text"] for e in events[:-1]) == "", "padded ids decode to nothing")
        status, reply = server.request("POST", "/v1/completions", {**req, "logprobs": 2})
        check(status == 200 and reply["choices"][0]["text"] == "" and reply["choices"][0]["logprobs"]["tokens"] == [""] * 5 and
              reply["usage"]["completion_tokens"] == 5, f"non-streamed padded ids: {status} {str(reply)[:300]}")
        status, reply = server.request("POST", "/v1/chat/completions",
                                       {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "temperature": 0,
                                        "logprobs": True, "top_logprobs": 2})
        check(status == 200 and reply["choices"][0]["message"]["content"] == "", f"chat with padded ids: {status} {str(reply)[:300]}")
        check(alive(server), "alive after padded ids")

# drain: SIGTERM while a stream is open; the stream still gets its last chunk (finish_reason) and [DONE], and
# /health turns 503 while the server drains.
with Server(lattice, model, "--grpc-port", "-1", env={"LATTICE_SERVE_STEP_DELAY_MS": "20"}) as server:
    health = []

    def sigterm_and_probe():
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        health.append(server.request("GET", "/health", timeout=5))

    status, events = stream_events(server, {"prompt": "Hello", "max_tokens": 60, "ignore_eos": True}, headers={},
                                   on_first=lambda: threading.Thread(target=sigterm_and_probe).start())
    check(status == 200 and events and events[-1] == "[DONE]", f"drained stream ends with [DONE]: {events[-2:]}")
    finals = [e for e in events[:-1] if e["choices"][0]["finish_reason"]]
    check(len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == "length" and
          sum(1 for e in events[:-1]) >= 2, f"drained stream has its final chunk: {events[-2:]}")
    time.sleep(0.1)
    check(health and health[0][0] == 503 and health[0][1]["error"]["code"] == "draining", f"/health while draining: {health}")
    check(server.proc.wait(20) == 0, "drained server exits 0")

# access: the key from the environment or a file; without a key, browsers from elsewhere are refused.
with Server(lattice, model, "--grpc-port", "-1", env={"LATTICE_API_KEY": "from-env"}) as server:
    check(server.request("GET", "/v1/models")[0] == 401, "$LATTICE_API_KEY is required")
    check(server.request("GET", "/v1/models", headers={"Authorization": "Bearer from-env"})[0] == 200, "$LATTICE_API_KEY accepted")
with tempfile.NamedTemporaryFile("w", suffix=".key") as key_file:
    key_file.write("from-file\n")
    key_file.flush()
    with Server(lattice, model, "--grpc-port", "-1", "--api-key-file", key_file.name) as server:
        check(server.request("GET", "/v1/models")[0] == 401, "--api-key-file's key is required")
        check(server.request("GET", "/v1/models", headers={"Authorization": "Bearer from-file"})[0] == 200,
              "--api-key-file's key (trailing newline dropped) accepted")
with Server(lattice, model, "--grpc-port", "-1") as server:
    req = {"prompt": "hi", "max_tokens": 2}
    own = f"127.0.0.1:{server.port}"
    for origin, expected in [("http://evil.example", 403), (f"http://evil.example:{server.port}", 403),
                             ("http://localhost:3000", 403), ("null", 403), (f"http://{own}", 200)]:
        status, reply = server.request("POST", "/v1/completions", req, {"Origin": origin})
        check(status == expected, f"Origin {origin}: {status} {str(reply)[:200]}")
    # DNS rebinding: the page's own name is the Host, yet not this machine's.
    status, _ = server.request("POST", "/v1/completions", req, {"Origin": "http://rebind.example:80", "Host": "rebind.example:80"})
    check(status == 403, f"rebound origin: {status}")
    for content_type, expected in [("text/plain", 415), ("application/x-www-form-urlencoded", 415),
                                   ("multipart/form-data; boundary=x", 415), ("Application/JSON; charset=utf-8", 200)]:
        status, reply = server.request("POST", "/v1/completions", json.dumps(req).encode(), {"Content-Type": content_type})
        check(status == expected, f"Content-Type {content_type}: {status} {str(reply)[:200]}")
    status_line = status_line_of(server, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n")
    check(" 415 " in status_line, f"no Content-Type: {status_line!r}")

check.exit()
