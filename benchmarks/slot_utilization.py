"""Slot utilisation with jobs of uneven length: asynchronous exp sweepers vs Hydra's batch sweepers.

Two sets of 40 jobs, run as real `python app.py -m ...` commands on 2 workers: *uneven*, sleeping
0.2 + 1.8 * ((i * 7919) % 100) / 100 seconds (i = 0..39; 42.6 s of work, ideal makespan on 2 workers
about 21.3 s), with every sweeper; and *short*, sleeping 0.1 + 0.9 * ((i * 7919) % 100) / 100 seconds
(21.3 s of work), with exp_grid and with exp_gopt and each of its surrogates, where the time between two
jobs of a worker and a freed slot's proposal weigh most.
Utilisation = sum of job durations / (workers x wall-clock), over the whole command (Python and
Hydra start-up included) and over the sweep itself (first job start to last job end); the gap is the
median time a worker process spends between the end of one job's function and the start of its next
one (for every sweeper here: Hydra's per-job work, the launcher's round trip, the sweeper's
bookkeeping and proposals). The optimizing
sweepers (exp_gopt, Optuna) choose x in range(0, 40) and each trial sleeps the duration of its x,
so every sweeper runs the same 40 durations when it explores all of them; the work counted is
what the jobs actually slept (an optimizer that repeats a value counts it twice).

    python benchmarks/slot_utilization.py
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sleep_app import read_jobs, sleep_app

SETS = {
    "uneven": [0.2 + 1.8 * ((i * 7919) % 100) / 100 for i in range(40)],
    "short": [0.1 + 0.9 * ((i * 7919) % 100) / 100 for i in range(40)],
}
GOPT_ON_EXP_LOCAL = ["hydra/sweeper=exp_gopt", "hydra/launcher=exp_local", "hydra.launcher.workers=2", "+x=range(0,40)"]

UNEVEN = {
    "exp_grid + exp_local (2 workers)": [
        "hydra/sweeper=exp_grid",
        "hydra/launcher=exp_local",
        "hydra.launcher.workers=2",
        "+x=range(0,40)",
    ],
    "exp_gopt + exp_local (2 workers), 40 trials": [*GOPT_ON_EXP_LOCAL, "hydra.sweeper.n_trials=40"],
    "basic sweeper + joblib (2 workers), one batch of 40": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "+x=range(0,40)"],
    "basic sweeper + joblib (2 workers), batches of 2": [
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "+x=range(0,40)",
        "hydra.sweeper.max_batch_size=2",
    ],
    "Optuna sweeper (n_jobs=2) + joblib, 40 trials": [
        "hydra/sweeper=optuna",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=40",
        "+x=int(interval(0,39))",
    ],  # Optuna's range() includes its stop
}
SHORT = {
    "exp_grid + exp_local (2 workers)": UNEVEN["exp_grid + exp_local (2 workers)"],
    **{
        f"exp_gopt surrogate={surrogate} + exp_local (2 workers), 40 trials": [
            *GOPT_ON_EXP_LOCAL,
            "hydra.sweeper.n_trials=40",
            f"hydra.sweeper.surrogate={surrogate}",
        ]
        for surrogate in ("GP", "RF", "ET", "GBRT", "random")
    },
}
NEEDS = {"joblib": "hydra_plugins.hydra_joblib_launcher", "optuna": "hydra_plugins.hydra_optuna_sweeper"}


def gaps(jobs: list) -> list:
    """Per worker process, the time between one job's end and the next one's start."""
    by_worker = collections.defaultdict(list)
    for pid, started, ended, _ in jobs:
        by_worker[pid].append((started, ended))
    found = []
    for spans in by_worker.values():
        spans.sort()
        found += [b[0] - a[1] for a, b in zip(spans, spans[1:])]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    options = parser.parse_args()
    for job_set in options.sets:
        print(f"\n{job_set} jobs ({sum(SETS[job_set]):.1f} s of work)\n")
        run_set(SETS[job_set], UNEVEN if job_set == "uneven" else SHORT)


def run_set(durations: list, runs: dict) -> None:
    print("| sweeper + launcher | jobs | work | wall-clock | utilisation | sweep only | utilisation (sweep) | gap (median) |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "app.py").write_text(sleep_app(durations))
        for name, args in runs.items():
            missing = [m for key, m in NEEDS.items() if any(key in a for a in args) and importlib.util.find_spec(m) is None]
            if missing:
                print(f"| {name} | not installed: {', '.join(missing)} | | |")
                continue
            log = work / f"{len(name)}-{abs(hash(name))}.log"
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "app.py", "-m", *args, f"hydra.sweep.dir={log.with_suffix('')}"],
                cwd=work,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=dict(os.environ, WORK_LOG=str(log)),
            )
            wall = time.perf_counter() - started
            jobs = read_jobs(log)
            busy = sum(j[3] for j in jobs)
            sweep = max(j[2] for j in jobs) - min(j[1] for j in jobs)
            print(
                f"| {name} | {len(jobs)} | {busy:.1f} s | {wall:.1f} s | {100 * busy / (2 * wall):.0f}% | {sweep:.1f} s "
                f"| {100 * busy / (2 * sweep):.0f}% | {1000 * statistics.median(gaps(jobs)):.0f} ms |",
                flush=True,
            )


if __name__ == "__main__":
    main()
