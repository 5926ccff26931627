"""Starts `lattice serve` on the tiny-llama fixture on a free 127.0.0.1 port and always stops it."""
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request


class Server:
    def __init__(self, lattice, model, *flags, env=None, wait_ready=True, prefix=()):
        """`prefix` runs the server under a launcher (mpirun ...); signals then go to rank 0's pid."""
        self.lattice, self.model = lattice, model
        full_env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
        self.rank0_pid = None
        self.proc = subprocess.Popen([*prefix, lattice, "serve", "--model", model, "--port", "0", *flags],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=full_env)
        self.log, self.port, self.grpc_port = [], None, None
        self._ready = threading.Event()
        self._ports = threading.Event()
        threading.Thread(target=self._read_log, daemon=True).start()
        if not self._ports.wait(30):
            self.stop()
            raise RuntimeError("server did not report its port:\n" + "".join(self.log))
        if wait_ready and not self._ready.wait(60):
            self.stop()
            raise RuntimeError("server did not become ready:\n" + "".join(self.log))

    def _read_log(self):
        for line in self.proc.stderr:
            self.log.append(line)
            m = re.search(r"HTTP on http://127\.0\.0\.1:(\d+) \(pid (\d+)\)", line)
            if m:
                self.port, self.rank0_pid = int(m.group(1)), int(m.group(2))
                if "--grpc-port" in self.proc.args and "-1" in self.proc.args:
                    self._ports.set()
            m = re.search(r"gRPC on 127\.0\.0\.1:(\d+)", line)
            if m:
                self.grpc_port = int(m.group(1))
                self._ports.set()
            if "ready (model" in line:
                self._ready.set()

    def wait_ready(self, timeout=60):
        return self._ready.wait(timeout)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, parsed JSON or text) of one request; a body goes as application/json unless `headers` say."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        headers = dict(headers or {})
        if data is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url(path), data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except json.JSONDecodeError:
            return status, text

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signals the server and returns its exit code (killing it if it does not stop in time)."""
        if self.proc.poll() is None:
            if self.rank0_pid and self.rank0_pid != self.proc.pid:
                os.kill(self.rank0_pid, sig)
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def sse_events(resp, limit=None, on_event=None):
    """The data payloads of the server-sent events `resp` (an http.client response) streams, each parsed as JSON
    but the final "[DONE]", up to and including [DONE], or the first `limit` of them; `on_event(events)` runs
    after each."""
    events = []
    while limit is None or len(events) < limit:
        line = resp.fp.readline().decode()
        if not line:
            break
        if line.startswith("data: "):
            payload = line[6:].strip()
            events.append(payload if payload == "[DONE]" else json.loads(payload))
            if on_event:
                on_event(events)
            if payload == "[DONE]":
                break
    return events


def parse_metrics(text):
    """{(name, frozenset(labels)): value}; raises on any line that is not valid exposition format."""
    families, samples = {}, {}
    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
    label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            families.setdefault(parts[2], {})[parts[1]] = parts[3]
            continue
        m = sample.match(line)
        if not m:
            raise ValueError(f"bad metrics line: {line!r}")
        labels, rest = [], m.group(3) or ""
        while rest:
            lm = label.match(rest)
            if not lm:
                raise ValueError(f"bad labels in {line!r}")
            labels.append((lm.group(1), lm.group(2)))
            rest = rest[lm.end():]
        samples[(m.group(1), frozenset(labels))] = float(m.group(4))
    return families, samples


class Checks:
    """Counts passed checks and prints each failure as it happens (thread-safe)."""

    def __init__(self):
        self.passed, self.failures, self._lock = 0, [], threading.Lock()

    def __call__(self, cond, what):
        with self._lock:
            if cond:
                self.passed += 1
            else:
                self.failures.append(what)
                print("FAIL:", what, flush=True)
        return cond

    def exit(self):
        print(f"{self.passed} passed, {len(self.failures)} failed")
        raise SystemExit(1 if self.failures else 0)


def write_padded_vocab_model(src, dst, vocab_size):
    """A copy of the f32 checkpoint `src` (tokenizer included) whose vocabulary is padded to `vocab_size`, with
    an lm_head that only ever picks ids past the tokenizer's: rows of the original ids are zero (logit 0) and the
    first two padded rows are +w and -w, so one of them has a positive logit for any hidden state not orthogonal
    to w. Like a real checkpoint with a padded vocabulary, but one whose greedy output is all padding."""
    import shutil
    import struct
    with open(f"{src}/model.safetensors", "rb") as f:
        header_len = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_len))
        data = f.read()
    config = json.load(open(f"{src}/config.json"))
    old_vocab = config["vocab_size"]
    tensors, out_header, offset = [], {}, 0
    for name, info in header.items():
        if name == "__metadata__":
            out_header[name] = info
            continue
        assert info["dtype"] == "F32", f"{name} is {info['dtype']}"
        begin, end = info["data_offsets"]
        raw, shape = data[begin:end], list(info["shape"])
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            row = shape[1] * 4
            if name == "lm_head.weight":
                w = raw[:row]
                negated = struct.pack(f"<{shape[1]}f", *(-x for x in struct.unpack(f"<{shape[1]}f", w)))
                raw = bytes(row * old_vocab) + w + negated
            raw += bytes(row * vocab_size - len(raw))  # zero rows up to vocab_size
            shape[0] = vocab_size
        out_header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        tensors.append(raw)
        offset += len(raw)
    text = json.dumps(out_header).encode()
    text += b" " * (-len(text) % 8)
    with open(f"{dst}/model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(tensors))
    config["vocab_size"] = vocab_size
    json.dump(config, open(f"{dst}/config.json", "w"))
    for name in os.listdir(src):
        if name.startswith("tokenizer") or name.endswith("_map.json"):
            shutil.copy(f"{src}/{name}", dst)
