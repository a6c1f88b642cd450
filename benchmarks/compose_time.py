"""Per-job config composition: Hydra's load_sweep_config against exp_local's cached Composer.

Composes 100 job configs of a small app (one config file, two value overrides per job) both ways,
in one process, and prints milliseconds per job (median of 3 rounds).

    python benchmarks/compose_time.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from hydra_plugins.exp_launcher._compose import Composer


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.yaml").write_text("lr: 0.1\nx: 0\nmodel: {depth: 2, width: 64}\n")
        with initialize_config_dir(config_dir=tmp, job_name="app", version_base=None):
            loader = GlobalHydra.instance().config_loader()
            master = loader.load_configuration("config", overrides=["x=range(0,100)"], run_mode=RunMode.MULTIRUN)
            ways = {
                "Hydra's load_sweep_config": lambda o: loader.load_sweep_config(master, o),
                "exp_local's Composer (cached tree)": Composer(loader, master).compose,
            }
            for name, compose in ways.items():
                rounds = []
                for _ in range(3):
                    started = time.perf_counter()
                    for i in range(100):
                        compose([f"x={i}", "lr=0.2"])
                    rounds.append((time.perf_counter() - started) * 10)  # ms per job
                print(f"{name}: {statistics.median(rounds):.1f} ms per job")


if __name__ == "__main__":
    main()
