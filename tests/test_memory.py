"""A sweep's memory does not grow with the number of finished jobs.

One real multirun of a few thousand trivial jobs (exp_grid on exp_local, as a user types it) while the
test samples the driver's resident memory together with the number of rows in the results CSV. Keeping
one ``JobReturn`` per finished job (its config and Hydra config, about 0.1 MB) made a 10^6-job grid run
out of memory; the bound here is a tenth of that per job.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import List, Optional, Tuple

JOBS = 1_200
FROM = 300  # growth is measured from this many finished jobs on: start-up is over by then
KB_PER_JOB = 10

APP = textwrap.dedent("""
    import hydra
    @hydra.main(version_base=None, config_path=None, config_name=None)
    def main(cfg):
        return float(cfg.x)
    main()
""")


def resident_mb(pid: int) -> Optional[float]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def finished_rows(csv: Path) -> int:
    try:
        return max(0, csv.read_bytes().count(b"\n") - 1)
    except OSError:
        return 0


def test_the_drivers_memory_does_not_grow_with_finished_jobs(tmp_path, spawn):
    (tmp_path / "app.py").write_text(APP)
    sweep = tmp_path / "sweep"
    with open(tmp_path / "sweep.log", "w") as log:
        driver = spawn(
            [
                sys.executable,
                "app.py",
                "-m",
                "hydra/sweeper=exp_grid",
                "hydra/launcher=exp_local",
                "hydra.launcher.workers=2",
                "hydra.sweeper.progress=log",
                f"+x=range(0,{JOBS})",
                f"hydra.sweep.dir={sweep}",
            ],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    samples: List[Tuple[int, float]] = []  # (finished jobs, the driver's resident MB)
    deadline = time.monotonic() + 600
    while driver.poll() is None and time.monotonic() < deadline:
        rows, rss = finished_rows(sweep / "exp_results.csv"), resident_mb(driver.pid)
        if rss is not None:
            samples.append((rows, rss))
        time.sleep(0.2)
    assert driver.wait(timeout=5) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    assert finished_rows(sweep / "exp_results.csv") == JOBS

    later = [(rows, rss) for rows, rss in samples if rows >= FROM]
    start_rows, start_rss = later[0]
    end_rows = later[-1][0]
    assert end_rows - start_rows >= JOBS // 2, f"too few samples while the sweep ran: {samples[-5:]}"
    growth_kb = 1024 * (max(rss for _, rss in later) - start_rss) / (end_rows - start_rows)
    assert growth_kb < KB_PER_JOB, (
        f"the driver grew {growth_kb:.1f} kB per finished job between {start_rows} and {end_rows} jobs "
        f"({start_rss:.0f} MB -> {max(rss for _, rss in later):.0f} MB)"
    )
