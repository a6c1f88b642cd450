"""Grid start-up: time until the first job starts, and the driver's peak memory, exp_grid vs Hydra's basic sweeper.

Hydra's basic sweeper builds every combination (and composes every job's
config) before it launches anything; exp_grid streams the grid. Each run is a
real `python app.py -m ...` in a subprocess; the app records when its first job
starts, then the harness stops the sweep and reads the driver's peak RSS
(VmHWM) from /proc.

    python benchmarks/grid_startup.py            # sizes as in docs/benchmarks.md
    python benchmarks/grid_startup.py --quick    # small sizes only
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

APP = textwrap.dedent("""
    import os, time, hydra
    @hydra.main(version_base=None, config_path=None, config_name=None)
    def main(cfg):
        path = os.environ["FIRST_JOB_MARK"]
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(repr(time.time()))
        time.sleep(60)
    main()
""")


def space(n_params: int, per_param: int) -> str:
    return "".join(f'[p{i}]\ntype = "range"\nbounds = [0, {per_param}]\ndtype = "int"\n' for i in range(n_params))


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(workdir: Path, args: list, timeout: float) -> tuple:
    mark = workdir / "first_job"
    if mark.exists():
        mark.unlink()
    env = dict(os.environ, FIRST_JOB_MARK=str(mark))
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, "app.py", "-m", *args, f"hydra.sweep.dir={workdir / 'sweep'}"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while not mark.exists():
            if time.time() - started > timeout:
                return float("inf"), peak_rss_mb(proc.pid)
            if proc.poll() is not None:
                raise RuntimeError(f"sweep exited early: {args}")
            time.sleep(0.01)
        first = float(mark.read_text()) - started
        return first, peak_rss_mb(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300)
    options = parser.parse_args()
    cases = [(3, 10), (4, 10)] if options.quick else [(2, 10), (3, 10), (4, 10), (6, 10)]
    print("| configurations | sweeper | first job starts after (s, median) | driver peak RSS (MB) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "app.py").write_text(APP)
        for n_params, per in cases:
            size = per**n_params
            (work / "grid.conf").write_text(space(n_params, per))
            sweeps = {"exp_grid": ["hydra/sweeper=exp_grid", "+exp.params=grid.conf"]}
            if size <= 1000:  # beyond this the basic sweeper takes minutes before its first job
                sweeps["basic"] = [f"+p{i}=range(0,{per})" for i in range(n_params)]
            for name, args in sweeps.items():
                runs = [measure(work, args, options.timeout) for _ in range(options.repeats)]
                first = statistics.median(r[0] for r in runs)
                rss = statistics.median(r[1] for r in runs)
                print(f"| {size:,} | {name} | {first:.2f} | {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
