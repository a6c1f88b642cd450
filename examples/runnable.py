"""EXP's quick-start module as a Hydra app: the objective is x ** 2.

EXP called ``run(x=1, **kwargs)``; Hydra calls ``main(cfg)`` with the job's
config, so ``x`` comes from ``cfg`` (1 when no sweep sets it). The return
value is the job's result, which optimizing sweepers minimise.
"""
import logging

import hydra
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def run(x: float = 1, **kwargs) -> float:
    return x**2


@hydra.main(version_base=None, config_path=None, config_name=None)
def main(cfg: DictConfig) -> float:
    result = run(**cfg)
    log.info("x=%s -> %s", cfg.get("x", 1), result)
    return result


if __name__ == "__main__":
    main()
