"""Memory over a long sweep: the driver's and the workers' peak RSS after 10^3, 10^4, 10^5 trivial jobs.

A sweep that keeps something per finished job runs out of memory on a large
grid however cheap its jobs are, so peak RSS must not depend on how many
jobs have finished. Each run is a real `python app.py -m ...` in a subprocess
sweeping `+x=range(0,N)` over a job that returns at once; the harness samples
the peak RSS (VmHWM in /proc) of the driver and of every process below it
(exp_local's workers and their supervisors) until the sweep exits. The growth
per 1,000 jobs is taken between the smallest and the largest size. Hydra's
basic sweeper with its basic launcher is the baseline, measured in the same
run up to --baseline-max jobs (it composes every job's config before the
first one starts, so larger sizes take too long).

    python benchmarks/memory.py                           # 10^3 and 10^4 jobs
    python benchmarks/memory.py --jobs 1000 10000 100000 --only "exp_grid + exp_local, 2 workers"
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

APP = textwrap.dedent("""
    import hydra
    @hydra.main(version_base=None, config_path=None, config_name=None)
    def main(cfg):
        return float(cfg.x)
    main()
""")

SWEEPS = {
    "exp_grid + exp_local, 2 workers": [
        "hydra/sweeper=exp_grid",
        "hydra/launcher=exp_local",
        "hydra.launcher.workers=2",
        "hydra.sweeper.progress=log",
    ],
    "Hydra's basic sweeper + basic launcher": [],
}
BASELINE = "Hydra's basic sweeper + basic launcher"


def peak_rss_mb(pid: int) -> Optional[float]:
    """VmHWM of a live process (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def descendants(pid: int) -> List[int]:
    """Every live process below ``pid`` (exp_local's workers, and the supervisors they run under)."""
    tree: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        tree.setdefault(int(stat[stat.rindex(")") + 2 :].split()[1]), []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in tree.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def measure(workdir: Path, args: List[str], jobs: int, interval: float) -> Tuple[float, float, float, int]:
    """Wall-clock, the driver's peak RSS, the largest peak RSS below it, and how many processes were below it."""
    sweep_dir = workdir / "sweep"
    subprocess.run(["rm", "-rf", str(sweep_dir)], check=True)
    command = [sys.executable, "app.py", "-m", *args, f"+x=range(0,{jobs})", f"hydra.sweep.dir={sweep_dir}"]
    started = time.perf_counter()
    with open(workdir / "sweep.log", "w") as log:
        driver = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    driver_peak = 0.0
    workers: Dict[int, float] = {}
    while driver.poll() is None:
        driver_peak = max(driver_peak, peak_rss_mb(driver.pid) or 0.0)
        for child in descendants(driver.pid):
            workers[child] = max(workers.get(child, 0.0), peak_rss_mb(child) or 0.0)
        time.sleep(interval)
    wall = time.perf_counter() - started
    if driver.returncode != 0:
        raise RuntimeError(f"the sweep failed (exit {driver.returncode}): see {workdir / 'sweep.log'}")
    return wall, driver_peak, max(workers.values(), default=float("nan")), len(workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1_000, 10_000], help="sweep sizes")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--baseline-max", type=int, default=1_000, help="largest size run with Hydra's basic sweeper")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between two samples of /proc")
    parser.add_argument("--only", nargs="+", choices=list(SWEEPS), help="measure only these sweeps")
    options = parser.parse_args()
    print("| sweeper + launcher | jobs | wall-clock | driver peak RSS | largest peak RSS below the driver | processes below the driver |")
    print("|---|---|---|---|---|---|")
    growth = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "app.py").write_text(APP)
        for name, args in SWEEPS.items():
            if options.only and name not in options.only:
                continue
            peaks = {}
            for jobs in sorted(options.jobs):
                if name == BASELINE and jobs > options.baseline_max:
                    continue
                runs = [measure(work, args, jobs, options.interval) for _ in range(options.repeats)]
                wall, driver, worker = (statistics.median(r[i] for r in runs) for i in range(3))
                peaks[jobs] = (driver, worker)
                workers = f"{runs[0][3]}" if runs[0][3] else "none"
                worker_cell = f"{worker:.0f} MB" if runs[0][3] else ""
                print(f"| {name} | {jobs:,} | {wall:.0f} s | {driver:.0f} MB | {worker_cell} | {workers} |", flush=True)
            if len(peaks) > 1:
                low, high = min(peaks), max(peaks)
                growth[name] = [1000 * (peaks[high][i] - peaks[low][i]) / (high - low) for i in range(2)], low, high
    for name, ((driver, worker), low, high) in growth.items():
        workers = f", largest process below it {worker:+.2f} MB" if worker == worker else ""
        print(f"{name}: growth per 1,000 jobs from {low:,} to {high:,} jobs: driver {driver:+.2f} MB{workers}")


if __name__ == "__main__":
    main()
