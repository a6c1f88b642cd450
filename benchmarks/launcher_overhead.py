"""Launcher overhead: per-job cost on trivial jobs, and wall-clock for jobs of uneven length.

Each measurement is a real `python app.py -m ...` run. The sweeper is exp_grid
for every launcher, so that the figures are the launchers' own cost (Hydra's
basic sweeper composes every job's config in the parent first; its own share is
shown on a separate line). Per-job cost = (T(N) - T(1)) / (N - 1), so the
interpreter and Hydra start-up are left out. Launchers that are not installed
(hydra-joblib-launcher, hydra-submitit-launcher) are skipped.

    python benchmarks/launcher_overhead.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

APP = textwrap.dedent("""
    import time, hydra
    @hydra.main(version_base=None, config_path=None, config_name=None)
    def main(cfg):
        time.sleep(float(cfg.get("sleep", 0)))
    main()
""")

LAUNCHERS = {
    "basic (sequential)": ["hydra/launcher=basic"],
    "joblib, 2 workers": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_local, 2 at a time": ["hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=1", "hydra.sweeper.max_batch_size=2"],
    "exp_local, 2 workers": ["hydra/launcher=exp_local", "hydra.launcher.workers=2"],
}
NEEDS = {"joblib, 2 workers": "hydra_plugins.hydra_joblib_launcher", "submitit_local, 2 at a time": "hydra_plugins.hydra_submitit_launcher"}


def timed(workdir: Path, args: list) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "app.py", "-m", *args, f"hydra.sweep.dir={workdir / 'sweep'}"],
        cwd=workdir,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def available(name: str) -> bool:
    module = NEEDS.get(name)
    return module is None or importlib.util.find_spec(module) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--only", nargs="+", choices=list(LAUNCHERS), help="measure only these launchers")
    options = parser.parse_args()
    durations = [round(0.2 + 1.8 * ((i * 7919) % 100) / 100, 3) for i in range(20)]
    uneven = ",".join(str(d) for d in durations)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "app.py").write_text(APP)
        header = " | ".join(f"per job, {n} jobs" for n in options.sizes)
        print(f"| launcher (sweeper: exp_grid) | {header} | 20 uneven jobs (0.2-2.0 s, {sum(durations):.1f} s of work): wall-clock |")
        print("|---|" + "---|" * (len(options.sizes) + 1))
        for name, args in LAUNCHERS.items():
            if options.only and name not in options.only:
                continue
            if not available(name):
                print(f"| {name} | " + " | ".join("not installed" for _ in options.sizes) + " | |")
                continue
            base = ["hydra/sweeper=exp_grid", *args]
            one = statistics.median(timed(work, [*base, "+x=range(0,1)"]) for _ in range(options.repeats))
            cells = []
            for n in options.sizes:
                total = statistics.median(timed(work, [*base, f"+x=range(0,{n})"]) for _ in range(options.repeats))
                cells.append(f"{1000 * (total - one) / (n - 1):.0f} ms")
            wall = statistics.median(timed(work, [*base, f"+sleep={uneven}"]) for _ in range(options.repeats))
            print(f"| {name} | " + " | ".join(cells) + f" | {wall:.1f} s |", flush=True)
        one = statistics.median(timed(work, ["+x=range(0,1)"]) for _ in range(options.repeats))
        cells = []
        for n in options.sizes:
            total = statistics.median(timed(work, [f"+x=range(0,{n})"]) for _ in range(options.repeats))
            cells.append(f"{1000 * (total - one) / (n - 1):.0f} ms")
        print("| Hydra's basic sweeper + basic launcher (composition in the parent included) | " + " | ".join(cells) + " | |")


if __name__ == "__main__":
    main()
