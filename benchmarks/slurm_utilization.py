"""Cluster utilisation on a real (local, single-node) SLURM: exp_slurm's asynchronous path vs submitit_slurm.

16 jobs sleeping 2 + 8 * ((i * 7919) % 100) / 100 seconds (i = 0..15), 2 at a time (the node's 2 CPUs,
one per job), run as real ``python app.py -m ...`` commands against the cluster of ``tests/local_slurm.py``
(started here; root installs SLURM with apt-get when it is missing). Utilisation = work / (2 x the time
from the first job's start to the last job's end), so SLURM's scheduling and each job's start-up count,
the driver's own start-up does not. Optimization runs choose x in range(0, 16), so the same durations run.

    python benchmarks/slurm_utilization.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from local_slurm import LocalSlurm  # noqa: E402
from sleep_app import read_jobs, sleep_app  # noqa: E402

DURATIONS = [2 + 8 * ((i * 7919) % 100) / 100 for i in range(16)]
APP = sleep_app(DURATIONS)
SLURM = ["hydra.launcher.partition=debug", "hydra.launcher.timeout_min=5", "hydra.launcher.cpus_per_task=1"]
GOPT = [
    "hydra/sweeper=exp_gopt",
    "+x=range(0,16)",
    "hydra.sweeper.n_trials=16",
    "hydra.sweeper.n_jobs=2",
    "hydra.sweeper.n_initial_points=4",
]
RUNS = {
    "exp_grid + exp_slurm (asynchronous, 2 in flight)": [
        "hydra/sweeper=exp_grid",
        "+x=range(0,16)",
        "hydra/launcher=exp_slurm",
        "hydra.launcher.array_parallelism=2",
        "hydra.launcher.poll_interval_s=1",
    ],
    "exp_grid + submitit_slurm (one array, 2 at a time)": [
        "hydra/sweeper=exp_grid",
        "+x=range(0,16)",
        "hydra/launcher=submitit_slurm",
        "hydra.launcher.array_parallelism=2",
    ],
    "exp_gopt + exp_slurm (asynchronous, 2 in flight)": [*GOPT, "hydra/launcher=exp_slurm", "hydra.launcher.poll_interval_s=1"],
    "exp_gopt + submitit_slurm (batches of 2)": [*GOPT, "hydra/launcher=submitit_slurm"],
}


def main() -> None:
    print("| sweeper + launcher | jobs | work | first start to last end | utilisation |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cluster = LocalSlurm(work / "slurm", gpus=0).start()
        os.environ.update(cluster.env)
        try:
            (work / "app.py").write_text(APP)
            for n, (name, args) in enumerate(RUNS.items()):
                log = work / f"{n}.log"
                subprocess.run(
                    [sys.executable, "app.py", "-m", *args, *SLURM, f"hydra.sweep.dir={work / str(n)}"],
                    cwd=work,
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=dict(os.environ, WORK_LOG=str(log)),
                )
                jobs = read_jobs(log)
                busy = sum(j[3] for j in jobs)
                span = max(j[2] for j in jobs) - min(j[1] for j in jobs)
                print(f"| {name} | {len(jobs)} | {busy:.1f} s | {span:.1f} s | {100 * busy / (2 * span):.0f}% |", flush=True)
                time.sleep(1)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
