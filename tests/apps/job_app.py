"""A Hydra app whose behaviour is keyed by the job's number, not by its parameters.

An optimizer chooses the parameters, so a test that needs "the 4th trial returns nan" or "the first trial
is the slow one" names jobs instead. Optional keys (under ``by_job``): ``returns`` ({job num: value}:
return that value, e.g. nan or inf, instead of x), ``sleeps`` ({job num: seconds}), ``record`` (a file to
append one JSON line per job to: job num, x, SLURM job id, start and end times).
"""

import json
import os
import time

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base=None, config_path=None, config_name=None)
def main(cfg: DictConfig):
    by_job = OmegaConf.to_container(cfg.get("by_job") or OmegaConf.create({}))
    num = HydraConfig.get().job.num
    sleeps, returns = ({int(k): v for k, v in (by_job.get(key) or {}).items()} for key in ("sleeps", "returns"))
    started = time.time()
    time.sleep(float(sleeps.get(num, 0)))
    if by_job.get("record"):
        with open(by_job["record"], "a", encoding="utf-8") as handle:
            handle.write(
                json.dumps({"num": num, "x": cfg.x, "slurm_job": os.environ.get("SLURM_JOB_ID"), "started": started, "ended": time.time()})
                + "\n"
            )
    return returns[num] if num in returns else cfg.x


if __name__ == "__main__":
    main()
