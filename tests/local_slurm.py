"""A real single-node SLURM cluster on localhost, installed and started by the tests.

CI is a fresh Debian machine with root and no systemd, so the daemons are
started directly, each with its state, spool, socket, PID and log files in one
private directory; ``SLURM_CONF`` (and the munge socket in it) points every
SLURM command at this cluster alone. The node has two fake GPUs (``Gres=gpu:2``
backed by symbolic links to /dev/null), so ``--gres=gpu:1`` jobs get
``CUDA_VISIBLE_DEVICES`` from SLURM and a third concurrent GPU job waits. It declares at least two CPUs per
GPU, more than a small machine has (``SlurmdParameters=config_overrides``), so that one-CPU jobs are held
back by the GPUs, not by the CPUs.

    python tests/local_slurm.py start DIR   # for a manual session; prints the export line
    python tests/local_slurm.py stop DIR
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
DAEMONS = ("slurmd", "slurmctld", "munged")


class SlurmUnavailable(RuntimeError):
    """SLURM is not installed and cannot be installed here (not root, or no apt-get)."""


def ensure_installed() -> None:
    """Install Debian's SLURM and munge packages if their programs are missing (root only)."""
    if all(shutil.which(p) for p in ("sbatch", "slurmctld", "slurmd", "munged", "mungekey")):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SlurmUnavailable("SLURM is not installed; the tests install it with apt-get, which needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 2048


class LocalSlurm:
    """One cluster, everything under ``root``; ``start()`` returns once a job can run."""

    def __init__(self, root: Path, gpus: int = 2):
        self.root = Path(root).resolve()
        self.gpus = gpus
        self.node = "localnode"

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def env(self) -> Dict[str, str]:
        """What every process calling sbatch/squeue/scancel needs."""
        return {"SLURM_CONF": str(self.conf)}

    def _write_config(self) -> None:
        r = self.root
        for sub in ("state", "spool", "log", "run", "munge", "dev"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "munge", 0o755)  # munged refuses a socket directory that is not 0755
        for i in range(self.gpus):
            link = r / "dev" / f"nvidia{i}"
            if not link.is_symlink():
                link.symlink_to("/dev/null")  # slurmd rejects plain files as GPU devices
        cpus = max(os.cpu_count() or 1, 2 * self.gpus)
        node = (
            f"NodeName={self.node} NodeHostname={socket.gethostname()} NodeAddr=127.0.0.1 CPUs={cpus} "
            f"RealMemory={max(_memory_mb() - 1024, 512)} State=UNKNOWN" + (f" Gres=gpu:{self.gpus}" if self.gpus else "")
        )
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=exptest",
                    "SlurmctldHost=localhost(127.0.0.1)",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={r / 'munge' / 'munge.socket'}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    f"StateSaveLocation={r / 'state'}",
                    f"SlurmdSpoolDir={r / 'spool'}",
                    f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}",
                    f"SlurmdPidFile={r / 'run' / 'slurmd.pid'}",
                    f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "SlurmdParameters=config_overrides",
                    "SchedulerType=sched/backfill",
                    "SchedulerParameters=sched_interval=1",
                    "MpiDefault=none",
                    "ReturnToService=2",
                    "KillWait=2",
                    "MinJobAge=300",
                    "InactiveLimit=0",
                    "SlurmctldTimeout=30",
                    "SlurmdTimeout=30",
                    "DefMemPerCPU=256",
                    # no cgroups here (no systemd): slurmd polls each step's memory and kills one over its request
                    "JobAcctGatherType=jobacct_gather/linux",
                    "JobAcctGatherFrequency=task=1",
                    "JobAcctGatherParams=OverMemoryKill",
                    "GresTypes=gpu",
                    node,
                    "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        gres = ["AutoDetect=off"] + ([f"Name=gpu File={r / 'dev'}/nvidia[0-{self.gpus - 1}]"] if self.gpus else [])
        (r / "gres.conf").write_text("\n".join(gres) + "\n")

    def _run(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(command), env={**os.environ, **self.env}, capture_output=True, text=True)

    def start(self, timeout_s: float = 60) -> "LocalSlurm":
        ensure_installed()
        self.stop()
        self._write_config()
        r = self.root
        key = r / "munge" / "munge.key"
        if not key.exists():
            subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True)
        subprocess.run(
            [
                "munged",
                "--force",
                f"--socket={r / 'munge' / 'munge.socket'}",
                f"--key-file={key}",
                f"--pid-file={r / 'run' / 'munged.pid'}",
                f"--log-file={r / 'log' / 'munged.log'}",
                f"--seed-file={r / 'munge' / 'munged.seed'}",
            ],
            check=True,
            capture_output=True,
        )
        environ = {**os.environ, **self.env}
        subprocess.run(["slurmctld", "-c", "-f", str(self.conf)], env=environ, check=True, capture_output=True)
        subprocess.run(["slurmd", "-c", "-f", str(self.conf), "-N", self.node], env=environ, check=True, capture_output=True)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            state = self._run("sinfo", "-h", "-N", "-o", "%T").stdout.strip()
            if state.startswith("idle"):
                return self
            time.sleep(0.3)
        raise RuntimeError(f"the local SLURM did not come up in {timeout_s} s (node state {state!r}); logs in {r / 'log'}")

    def jobs(self) -> List[str]:
        """The cluster's queued and running job ids."""
        return self._run("squeue", "-h", "-o", "%i").stdout.split()

    def stop(self) -> None:
        if self.conf.exists():
            self._run("scancel", "--full", "-u", "root")
        for daemon in DAEMONS:
            pid_file = self.root / "run" / f"{daemon}.pid"
            try:
                pid = int(pid_file.read_text().strip())
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:  # it ended between the last check and now
                    pass
            pid_file.unlink(missing_ok=True)
        for pid in self._step_daemons():  # a step daemon whose job was killed can outlive slurmd: end it too
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _step_daemons(self) -> List[int]:
        """This cluster's slurmstepd processes (their environment names its slurm.conf)."""
        mark = f"SLURM_CONF={self.conf}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if (
                    proc.name.isdigit()
                    and (proc / "comm").read_text().strip() == "slurmstepd"
                    and mark in (proc / "environ").read_bytes().split(b"\0")
                ):
                    found.append(int(proc.name))
            except OSError:
                continue
        return found


if __name__ == "__main__":
    action, where = sys.argv[1], Path(sys.argv[2])
    cluster = LocalSlurm(where)
    if action == "start":
        cluster.start()
        print(f"export SLURM_CONF={cluster.conf}")
    else:
        cluster.stop()
