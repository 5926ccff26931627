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
        """(status, parsed JSON or text) of one request."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(self.url(path), data=data, method=method, headers=headers or {})
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
