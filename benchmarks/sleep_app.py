"""The Hydra app of the utilisation benchmarks: job ``x`` sleeps ``durations[x]`` seconds and appends
``[pid, started, ended, duration]`` to the file named by ``WORK_LOG``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import List, Sequence


def sleep_app(durations: Sequence[float]) -> str:
    """The app's source, to write next to the runs."""
    return textwrap.dedent(f"""
        import json, os, time, hydra
        DURATIONS = {list(durations)!r}
        @hydra.main(version_base=None, config_path=None, config_name=None)
        def main(cfg):
            started = time.time()
            time.sleep(DURATIONS[int(cfg.x)])
            with open(os.environ["WORK_LOG"], "a") as log:
                log.write(json.dumps([os.getpid(), started, time.time(), DURATIONS[int(cfg.x)]]) + "\\n")
            return float(cfg.x)
        main()
    """)


def read_jobs(log: Path) -> List[list]:
    """What the jobs appended: one ``[pid, started, ended, duration]`` per job."""
    return [json.loads(line) for line in log.read_text().splitlines()]
