"""What the exp launchers' engines share: a job and its future, failed returns, waiting for a batch."""
from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import Future
from typing import Any, Callable, Dict, List, Optional, Sequence

from omegaconf import OmegaConf

log = logging.getLogger("hydra_plugins.exp_launcher")


@dataclasses.dataclass
class Job:
    idx: int
    overrides: List[str]
    future: "Future[Any]"
    where: Optional[Dict[str, str]] = None  # output_dir, name, sweep_dir, once the job's config is known
    started: Optional[float] = None


def failed_return(job: Job, error: BaseException) -> Any:
    """A FAILED JobReturn for a job that could not return one itself (crash, timeout, cancellation)."""
    from hydra.core.utils import JobReturn, JobStatus

    hydra_cfg = None
    if job.where is not None:  # enough of the job's Hydra config to find its output directory and log
        hydra_cfg = OmegaConf.create({"hydra": {
            "runtime": {"output_dir": job.where["output_dir"]},
            "job": {"name": job.where["name"], "num": job.idx},
            "sweep": {"dir": job.where["sweep_dir"]},
        }})
    return JobReturn(overrides=job.overrides, cfg=None, hydra_cfg=hydra_cfg, working_dir=None,
                     task_name=None, status=JobStatus.FAILED, _return_value=error)


def collect(name: str, futures: Sequence["Future[Any]"], shutdown: Callable[..., None]) -> List[Any]:
    """The JobReturns of a batch, in order (Hydra's ``Launcher.launch``); Ctrl-C shuts the engine down."""
    try:
        returns = [future.result() for future in futures]
    except BaseException:  # Ctrl-C: nothing may outlive the launcher
        shutdown(cancel=True)
        raise
    failed = sum(r.status.name == "FAILED" for r in returns)
    log.info("%s: %d jobs done: %d completed, %d failed", name, len(returns), len(returns) - failed, failed)
    return returns
