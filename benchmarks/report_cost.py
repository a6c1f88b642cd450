"""The cost of ``exp_compat.report`` inside a pruned sweep: between rungs, and at a rung (where the job waits
for the sweep driver's decision).

Each measurement is a real ``python app.py -m ...`` run of exp_grid with ``pruner=asha``: every job reports
``--steps`` steps and times each ``report`` call (``time.perf_counter``), which it writes to a file; nothing is
ever stopped (``n_startup_trials`` larger than the number of jobs), so every job reports every step. With
``reduction_factor=2`` the rungs are at steps 1, 2, 4, 8, ...: the other steps are between rungs. The
launchers: exp_local (2 workers) and Hydra's basic launcher (the sweep decides while it waits in
``Launcher.launch``); the channel is the same for both: files, and bells that wake each side on one machine.
A third run has the app turn its bells off, as a job on another host has none that reach the driver, to
measure the files alone. Figures: the median over every call, and the 90th percentile.

    python benchmarks/report_cost.py [--jobs 4] [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

APP = textwrap.dedent("""
    import json, os, time, hydra
    from exp_compat import report
    from exp_compat.early_stopping import reporting

    @hydra.main(version_base=None, config_path=None, config_name=None)
    def main(cfg):
        if cfg.files_only:  # as a job on another host: no bell reaches the driver, none reaches the job
            os.environ[reporting.BELL_ENV] = "no-such-bell"
            reporting._own_bell = lambda: None
        times = []
        for step in range(1, int(cfg.steps) + 1):
            started = time.perf_counter()
            report(step, float(cfg.x) + 1.0 / step)
            times.append((step, time.perf_counter() - started))
        with open(cfg.out, "a") as handle:
            handle.write(json.dumps(times) + "\\n")
    main()
""")

LAUNCHERS = {
    "exp_local, 2 workers": ["hydra/launcher=exp_local", "hydra.launcher.workers=2", "+files_only=false"],
    "basic": ["+files_only=false"],
    "exp_local, files only (as from another host)": ["hydra/launcher=exp_local", "hydra.launcher.workers=2", "+files_only=true"],
}


def measure(workdir: Path, launcher: list, jobs: int, steps: int) -> dict:
    out = workdir / "times.jsonl"
    out.unlink(missing_ok=True)
    subprocess.run(
        [
            sys.executable,
            "app.py",
            "-m",
            "hydra/sweeper=exp_grid",
            *launcher,
            "hydra.sweeper.pruner=asha",
            "hydra.sweeper.reduction_factor=2",
            f"hydra.sweeper.n_startup_trials={jobs + 1}",
            f"+x=range(0,{jobs})",
            f"+steps={steps}",
            f"+out={out}",
            f"hydra.sweep.dir={workdir / 'sweep'}",
        ],
        cwd=workdir,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rungs, between = [], []
    for line in out.read_text().splitlines():
        for step, seconds in json.loads(line):
            (rungs if step & (step - 1) == 0 else between).append(seconds)
    return {"between rungs": between, "at a rung": rungs}


def quantile(values: list, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    print("| launcher | report | calls | median | 90th percentile |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "app.py").write_text(APP)
        for name, launcher in LAUNCHERS.items():
            for kind, seconds in measure(workdir, launcher, args.jobs, args.steps).items():
                median, p90 = statistics.median(seconds) * 1000, quantile(seconds, 0.9) * 1000
                print(f"| {name} | {kind} | {len(seconds)} | {median:.3f} ms | {p90:.3f} ms |", flush=True)


if __name__ == "__main__":
    main()
