"""A throw-away Slurm cluster for tests, built from Debian's munged, slurmctld and slurmd.

Every daemon runs in the foreground as a child of this process, from files generated under one run directory
(slurm.conf, the munge key, state, spool, logs; a short temporary one where the given path is too long for
unix sockets); nothing under /etc, /run or /var is read or written. stop() cancels every job, then ends each
daemon by its PID, then kills by PID whatever is left that carries this cluster's marker in its environment
(slurmstepd and job tasks detach from slurmd, so they are not its children). Should this process die without
stop(), the kernel kills the daemons (parent-death signal).

Two layouts:
  Cluster.loopback(run_dir)      one node, n1, on 127.0.0.1 with free ports, in this network namespace.
  Cluster.two_namespaces(run_dir) nodes n1 and n2, each in its own network, UTS and mount namespace (host
      names n1 and n2, and a private TmpFS: PMIx keeps per-node files there) made with unshare and joined by
      one veth pair, 10.200.0.1/24 <-> 10.200.0.2/24; slurmctld and the client commands run in n1's. The
      namespaces belong to holder processes of this cluster, so they (and the veth) vanish with them. Raises
      Unavailable (with the reason) where namespaces cannot be made.
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

SUBNET = "10.200.0"


class Unavailable(Exception):
    """What the machine forbids (the test skips with this reason)."""


def _die_with_parent():
    """preexec_fn: the kernel kills the child if this process dies without stop() (SIGKILL, a crash)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kw)


def free_ports(n):
    """n ports free on 127.0.0.1 at the time of asking."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _hardware_line():
    """The CPU layout slurmd detects here ("CPUs=2 Boards=1 SocketsPerBoard=1 ..."), without the memory."""
    fields = _run(["slurmd", "-C"]).stdout.split("\n")[0].split()
    return " ".join(f for f in fields if f.split("=")[0] in
                    ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore"))


def check_prerequisites():
    """Raises Unavailable naming what is missing for any Slurm cluster here."""
    if os.geteuid() != 0:
        raise Unavailable("slurmd must run as root to launch job steps (this test runs as uid %d)" % os.geteuid())
    missing = [c for c in ("munged", "slurmctld", "slurmd", "srun", "sbatch", "squeue", "sinfo", "scontrol",
                                 "scancel")
               if not shutil.which(c)]
    if missing:
        raise Unavailable("not installed: " + ", ".join(missing) + " (scripts/setup installs Debian's slurmd, "
                          "slurmctld, slurm-client and munge)")
    plugins = "/usr/lib/x86_64-linux-gnu/slurm-wlm"
    if os.path.isdir(plugins) and not os.path.exists(f"{plugins}/mpi_pmix.so"):
        raise Unavailable(f"Slurm's PMIx plugin is missing ({plugins}/mpi_pmix.so)")


# Unix socket paths (munged's, slurmstepd's under the spool) must fit in 108 bytes: a longer run directory is
# replaced by a short temporary one, which stop() removes.
MAX_RUN_DIR = 60


def _fresh_run_dir(run_dir, node_names):
    run_dir = os.path.abspath(run_dir)
    if len(run_dir) > MAX_RUN_DIR:
        run_dir = tempfile.mkdtemp(prefix="lattice-slurm-")
    elif os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    for d in ["state", "log", "jobs", "munge", "tmp"] + [f"spool/{n}" for n in node_names] + \
             [f"node-tmp/{n}" for n in node_names]:
        os.makedirs(f"{run_dir}/{d}")
    os.chmod(run_dir, 0o755)
    os.chmod(f"{run_dir}/munge", 0o755)  # munged wants its socket's directory readable by all
    return run_dir


def _remove_if_temporary(run_dir):
    if run_dir.startswith(tempfile.gettempdir() + "/lattice-slurm-"):
        shutil.rmtree(run_dir, ignore_errors=True)


class Cluster:
    def __init__(self, run_dir, nodes, namespaces):
        self.run_dir = run_dir
        self.nodes = nodes            # [(name, address)]
        self.namespaces = namespaces  # name -> holder pid, or empty for the loopback layout
        self.daemons = []             # (name, Popen), in start order
        self.holders = []             # Popen of each namespace holder
        self.conf = f"{self.run_dir}/slurm.conf"
        self.marker = f"LATTICE_SLURM_CLUSTER={self.run_dir}"
        self.env = dict(os.environ, SLURM_CONF=self.conf, LATTICE_SLURM_CLUSTER=self.run_dir)

    @classmethod
    def loopback(cls, run_dir):
        check_prerequisites()
        return cls(_fresh_run_dir(run_dir, ["n1"]), [("n1", "127.0.0.1")], {})

    @classmethod
    def two_namespaces(cls, run_dir):
        check_prerequisites()
        for tool in ("unshare", "nsenter", "ip", "hostname"):
            if not shutil.which(tool):
                raise Unavailable(f"{tool} is not installed")
        run_dir = _fresh_run_dir(run_dir, ["n1", "n2"])
        holders = {}
        try:
            for name in ("n1", "n2"):
                # The holder mounts the node's own TmpFS, prints once it is set up, then sleeps until stop().
                script = 'mount --bind "$1" "$2" && echo up && exec sleep 100000'
                p = subprocess.Popen(["unshare", "--net", "--uts", "--mount", "sh", "-c", script, "holder",
                                      f"{run_dir}/node-tmp/{name}", f"{run_dir}/tmp"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=_die_with_parent)
                holders[name] = p
                if p.stdout.readline().strip() != "up":
                    raise Unavailable("cannot create the node namespaces here: `unshare --net --uts --mount` "
                                      "says: " + p.stderr.read().strip())
            cluster = cls(run_dir, [("n1", f"{SUBNET}.1"), ("n2", f"{SUBNET}.2")],
                          {name: p.pid for name, p in holders.items()})
            cluster.holders = list(holders.values())
            cluster._wire_namespaces()
            return cluster
        except BaseException:
            for p in holders.values():
                p.kill()
                p.wait()
            _remove_if_temporary(run_dir)
            raise

    def _wire_namespaces(self):
        n1, n2 = self.namespaces["n1"], self.namespaces["n2"]
        steps = [(n1, ["ip", "link", "add", "name", "lat-n1", "type", "veth", "peer", "name", "lat-n2",
                       "netns", str(n2)])]
        for (name, address), pid in zip(self.nodes, (n1, n2)):
            steps += [(pid, ["hostname", name]), (pid, ["ip", "link", "set", "lo", "up"]),
                      (pid, ["ip", "addr", "add", f"{address}/24", "dev", f"lat-{name}"]),
                      (pid, ["ip", "link", "set", f"lat-{name}", "up"])]
        for pid, cmd in steps:
            r = _run(self.in_namespace(pid) + cmd)
            if r.returncode:
                raise Unavailable(f"cannot wire the node namespaces: `{' '.join(cmd)}` says: {r.stderr.strip()}")

    def in_namespace(self, pid):
        return ["nsenter", f"--net=/proc/{pid}/ns/net", f"--uts=/proc/{pid}/ns/uts",
                f"--mount=/proc/{pid}/ns/mnt"] if pid else []

    def node_prefix(self, name):
        """The command prefix that runs a program on node `name` (its namespaces; nothing on the loopback)."""
        return self.in_namespace(self.namespaces.get(name))

    def command(self, args):
        """A Slurm client command (srun, sbatch, ...) as run on the controller's node, n1."""
        return self.node_prefix("n1") + args

    def run(self, args, timeout, env=None):
        """A client command's CompletedProcess; `env` adds to the cluster's environment."""
        return subprocess.run(self.command(args), capture_output=True, text=True, timeout=timeout,
                              env=dict(self.env, **(env or {})))

    def node_tx_bytes(self, name):
        """Bytes node `name` has sent on its veth (/proc/PID/net/dev shows PID's network namespace)."""
        with open(f"/proc/{self.namespaces[name]}/net/dev") as f:
            for line in f:
                iface, _, counters = line.partition(":")
                if iface.strip() == f"lat-{name}":
                    return int(counters.split()[8])
        raise RuntimeError(f"node {name} has no interface lat-{name}")

    # ---- start-up -------------------------------------------------------------------------------------------

    def _write_files(self):
        key = f"{self.run_dir}/munge/munge.key"
        with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(os.urandom(128))
        ctl_name, ctl_address = self.nodes[0]
        if not self.namespaces:
            ctl_name = socket.gethostname().split(".")[0]  # slurmctld starts only where its host name is this
            ctld_port, slurmd_port = free_ports(2)
        else:
            ctld_port, slurmd_port = 6817, 6818  # each namespace has its own ports
        d = self.run_dir
        hardware = _hardware_line()
        lines = [
            "ClusterName=lattice-test",
            f"SlurmctldHost={ctl_name}({ctl_address})",
            f"SlurmctldPort={ctld_port}", f"SlurmdPort={slurmd_port}",
            "SlurmUser=root", "SlurmdUser=root",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={d}/munge/munge.socket",
            f"StateSaveLocation={d}/state", f"SlurmdSpoolDir={d}/spool/%n", f"TmpFS={d}/tmp",
            f"SlurmctldPidFile={d}/slurmctld.pid", f"SlurmdPidFile={d}/slurmd-%n.pid",
            f"SlurmctldLogFile={d}/log/slurmctld.log", f"SlurmdLogFile={d}/log/slurmd-%n.log",
            "ProctrackType=proctrack/pgid", "TaskPlugin=task/affinity",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/builtin", "MpiDefault=none", "ReturnToService=2",
            "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
            "JobAcctGatherType=jobacct_gather/none",
            "SlurmctldTimeout=30", "SlurmdTimeout=30", "MessageTimeout=20", "KillWait=3", "InactiveLimit=0",
            "MinJobAge=300", "SlurmctldDebug=info", "SlurmdDebug=info",
        ]
        lines += [f"NodeName={name} NodeAddr={address} {hardware} State=UNKNOWN" for name, address in self.nodes]
        lines.append("PartitionName=test Nodes=ALL Default=YES MaxTime=30 State=UP")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _start(self, name, cmd, node=None):
        with open(f"{self.run_dir}/log/{name}.out", "w") as log:
            p = subprocess.Popen(self.node_prefix(node) + cmd if node else cmd, stdout=log,
                                 stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
                                 preexec_fn=_die_with_parent)
        self.daemons.append((name, p))

    def _wait(self, what, ready, timeout):
        end = time.time() + timeout
        while time.time() < end:
            for name, p in self.daemons:
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited with {p.returncode} while waiting for {what}:\n" +
                                       self.logs())
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out after {timeout} s waiting for {what}:\n" + self.logs())

    def start(self):
        self._write_files()
        d = self.run_dir
        self._start("munged", ["munged", "-F", f"--key-file={d}/munge/munge.key", f"--socket={d}/munge/munge.socket",
                               f"--pid-file={d}/munge/munged.pid", f"--seed-file={d}/munge/munged.seed",
                               f"--log-file={d}/log/munged.log"])
        self._wait("munged", lambda: os.path.exists(f"{d}/munge/munge.socket"), 10)
        self._start("slurmctld", ["slurmctld", "-D", "-c", "-f", self.conf], node="n1")
        self._wait("slurmctld", lambda: self.run(["scontrol", "ping"], 10).stdout.count("is UP") > 0, 30)
        for name, _ in self.nodes:
            self._start(f"slurmd-{name}", ["slurmd", "-D", "-f", self.conf, "-N", name], node=name)
        names = ",".join(n for n, _ in self.nodes)

        def all_idle():
            states = self.run(["sinfo", "-h", "-N", "-n", names, "-o", "%t"], 10).stdout.split()
            return len(states) == len(self.nodes) and all(s == "idle" for s in states)
        self._wait("every node to register idle", all_idle, 30)
        return self

    # ---- shut-down --------------------------------------------------------------------------------------------

    def logs(self):
        out = []
        for name in sorted(os.listdir(f"{self.run_dir}/log")):
            with open(f"{self.run_dir}/log/{name}", errors="replace") as f:
                out.append(f"---- {name} (last 40 lines)\n" + "".join(f.readlines()[-40:]))
        return "\n".join(out)

    def _marked_pids(self):
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if self.marker.encode() in f.read().split(b"\0"):
                        pids.append(int(entry))
            except OSError:
                pass
        return pids

    def stop(self):
        if any(n == "slurmctld" and p.poll() is None for n, p in self.daemons):
            try:  # jobs first, so that their steps end through Slurm
                self.run(["scancel", "--full", "--user=root"], 20)
                end = time.time() + 15
                while time.time() < end and self.run(["squeue", "-h"], 10).stdout.strip():
                    time.sleep(0.3)
            except subprocess.TimeoutExpired:
                pass  # a stuck slurmctld: what is left is killed by PID below
        for _, p in reversed(self.daemons):
            if p.poll() is None:
                p.terminate()
        for _, p in reversed(self.daemons):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for pid in self._marked_pids():  # slurmstepd and tasks of steps that did not end with their job
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.holders:
            p.kill()
            p.wait()
        _remove_if_temporary(self.run_dir)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
