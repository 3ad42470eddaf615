"""A one-node SLURM cluster on this machine for tests/test_slurm.py: Debian's slurm-wlm (22.05) daemons on
loopback, started by the test and stopped at its end.

munged runs with a key and a socket of its own in the cluster's directory (the machine's munge, if any, is
left alone); slurmctld and slurmd listen on ports of their own. The node is `localhost` (127.0.0.1, 2 CPUs,
proctrack/linuxproc, task/none, select/cons_tres) in one partition, `debug`. No accounting: without
slurmdbd `sacct` fails, so status queries must use `squeue`, and MinJobAge=600 keeps finished jobs visible
to it. JobRequeue=0: only a job submitted with `--requeue` can be requeued, so a requeue that works shows
that the submitter asked for it.

The configuration is /etc/slurm/slurm.conf, the default path, because snakemake-executor-plugin-slurm's
in-job helper clears every SLURM_* variable, SLURM_CONF included. It is written only where there is none or
the one there is ours (its first line is MARK), and deleted at the end. So this needs Linux, root and the
packages (`apt-get install -y slurm-wlm munge`, which .ci/run does); :func:`unavailable` says what is missing.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

CONF = Path("/etc/slurm/slurm.conf")
MARK = "# transferbench tests/slurm_cluster.py: a test's own cluster; deleted when the test ends"
LOCK = Path("/tmp/transferbench-slurm-test.lock")  # one test cluster per machine: the config path is fixed
PARTITION = "debug"
NODE_MEMORY_MB = 2000  # RealMemory: the node's memory as SLURM schedules it (not enforced: no cgroups)
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel")
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])

CONFIG = """{mark}
# pids: {root}
ClusterName=transferbench
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.sock
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
JobRequeue=0
KillWait=30
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory={memory} State=UNKNOWN
PartitionName={partition} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def unavailable() -> str | None:
    """Why no test cluster can run here, or None."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return f"needs root on Linux: slurmd runs as root and the config must be at {CONF} (the plugin's " \
               "in-job helper clears SLURM_CONF)"
    missing = [c for c in DAEMONS + CLIENTS if not shutil.which(c, path=SBIN)]
    if missing:
        return f"{', '.join(missing)} not installed: `apt-get install -y slurm-wlm munge` (.ci/run does it)"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed: pip install -e '.[test]'"
    if CONF.exists() and not CONF.read_text().startswith(MARK):
        return f"{CONF} exists and is not this test's: a machine with its own SLURM is left alone"
    return None


class Cluster:
    """The daemons, their logs and pid files under ``root``; a context manager (:meth:`stop` at exit)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = None
        # the clients must find this cluster, not one that the caller's environment names
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}

    def run(self, *args: str, check: bool = True) -> str:
        res = subprocess.run(list(args), capture_output=True, text=True, env=self.env, timeout=30)
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {res.stderr.strip()}")
        return res.stdout

    def __enter__(self) -> Cluster:
        self.lock = LOCK.open("w")
        deadline = time.monotonic() + 600
        while True:  # another test cluster on this machine: wait for it to end
            try:
                fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another test holds {LOCK} for more than 10 minutes") from None
                time.sleep(2)
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        _stop_stale()
        for d in ("state", "spool"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        CONF.parent.mkdir(parents=True, exist_ok=True)
        CONF.write_text(CONFIG.format(mark=MARK, root=self.root, memory=NODE_MEMORY_MB, partition=PARTITION))
        r = self.root
        self._daemon("munged", "-F", "--force", f"--key-file={key}", f"--socket={r}/munge.sock",
                     f"--pid-file={r}/munged.pid", f"--log-file={r}/munged.log", f"--seed-file={r}/munged.seed")
        self._wait(lambda: (r / "munge.sock").exists(), "munged's socket")
        self._daemon("slurmctld", "-D", "-i")
        self._wait(lambda: "UP" in self.run("scontrol", "ping", check=False), "slurmctld")
        self._daemon("slurmd", "-D", "-N", "localhost")
        self._wait(lambda: self.run("sinfo", "-h", "-N", "-o", "%T", check=False).strip() == "idle", "an idle node")

    def _daemon(self, name: str, *args: str) -> None:
        out = (self.root / f"{name}.out").open("w")
        self.procs[name] = subprocess.Popen([shutil.which(name, path=SBIN), *args], stdout=out,
                                            stderr=subprocess.STDOUT, env=self.env, start_new_session=True)

    def _wait(self, ready, what: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"no {what} after {seconds} s (exited: {dead})\n{self.logs()}")
            time.sleep(0.2)

    def logs(self, lines: int = 15) -> str:
        out = []
        for f in sorted(self.root.glob("*.log")) + sorted(self.root.glob("*.out")):
            out.append(f"== {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    def jobs(self) -> dict[str, tuple[str, str]]:
        """Every job SLURM still knows (MinJobAge): id -> (state, reason)."""
        out = self.run("squeue", "--states=all", "-h", "-o", "%i|%T|%r")
        return {i: (s, r) for i, s, r in (line.split("|") for line in out.splitlines() if line)}

    def show(self, job: str) -> dict[str, str]:
        """`scontrol show job`'s Key=Value pairs."""
        return dict(re.findall(r"(\w+)=(\S*)", self.run("scontrol", "show", "job", job)))

    def stop(self) -> None:
        try:
            if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
                active = ("PENDING", "RUNNING", "COMPLETING", "REQUEUED", "SUSPENDED")
                running = [j for j, (s, _) in self.jobs().items() if s in active]
                if running:  # a failed test's jobs: their processes would outlive slurmd
                    self.run("scancel", *running, check=False)
                    self._wait(lambda: not any(s in active for s, _ in self.jobs().values()),
                               "end of the cancelled jobs", seconds=40)
        finally:
            for name in reversed(DAEMONS):
                proc = self.procs.pop(name, None)
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            if CONF.exists() and CONF.read_text().startswith(MARK):
                CONF.unlink()
            if self.lock is not None:
                self.lock.close()  # releases the flock
                self.lock = None


def _stop_stale() -> None:
    """Daemons of an earlier test cluster whose test was killed before its teardown (its config is still
    there, naming the directory of their pid files): stopped, so that their ports are free."""
    if not CONF.exists():
        return
    found = re.search(r"^# pids: (.+)$", CONF.read_text(), re.MULTILINE)
    for name in DAEMONS if found else ():
        pid_file = Path(found.group(1)) / f"{name}.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            if Path(f"/proc/{pid}/comm").read_text().strip() == name:
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    if not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.2)
        except (OSError, ValueError, IndexError):
            continue
