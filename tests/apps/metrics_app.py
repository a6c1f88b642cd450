"""A Hydra app that reports each epoch with metrics named like the sweep's own columns (``exp_compat.report``).

Its loss at epoch ``e`` is ``q + 10 / e``, reported with ``error``, ``status``, ``job_num`` and ``steps`` (the
loss, 1, 2, 3); ``many`` (a count) adds that many more metrics, ``m0``, ``m1``, ..., at every report.
"""

import hydra
from omegaconf import DictConfig

from exp_compat import report


@hydra.main(version_base=None, config_path=None, config_name=None)
def main(cfg: DictConfig):
    q = float(cfg.q)
    many = {f"m{i}": float(i) for i in range(int(cfg.get("many", 0)))}
    loss = None
    for epoch in range(1, int(cfg.get("epochs", 4)) + 1):
        loss = q + 10.0 / epoch
        report(epoch, loss, error=loss, status=1, job_num=2, steps=3, **many)
    return loss


if __name__ == "__main__":
    main()
