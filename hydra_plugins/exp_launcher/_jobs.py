"""What the exp launchers' engines share: a job and its future, failed returns, waiting for a batch."""

from __future__ import annotations

import dataclasses
import logging
import os
from concurrent.futures import Future
from typing import Any, Callable, Dict, List, Optional, Sequence

from omegaconf import OmegaConf

from exp_compat._hydra_internals import job_error
from exp_compat.early_stopping.reporting import Pruned
from exp_compat.files.columns import Status

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
    hydra_cfg = None
    if job.where is not None:  # enough of the job's Hydra config to find its output directory and log
        hydra_cfg = OmegaConf.create(
            {
                "hydra": {
                    "runtime": {"output_dir": job.where["output_dir"]},
                    "job": {"name": job.where["name"], "num": job.idx},
                    "sweep": {"dir": job.where["sweep_dir"]},
                }
            }
        )
    return failed_job_return(error, overrides=job.overrides, hydra_cfg=hydra_cfg)


def failed_job_return(error: BaseException, **fields: Any) -> Any:
    """A FAILED JobReturn of ``error`` (with the JobReturn ``fields`` given), set as Hydra's ``run_job`` sets it."""
    from hydra.core.utils import JobReturn, JobStatus

    job_return = JobReturn(status=JobStatus.FAILED, **fields)
    job_return.return_value = error
    return job_return


def status_word(job_return: Any) -> str:
    """How a JobReturn ended, in the sweep's words: a :class:`Status` (pruned: the job let ``exp_compat.Pruned``
    propagate, which Hydra counts as a failure), or Hydra's own word for a status the sweep has no name for."""
    status = getattr(getattr(job_return, "status", None), "name", "FAILED").lower()
    return Status.PRUNED if status == Status.FAILED and isinstance(job_error(job_return), Pruned) else status


def collect(name: str, futures: Sequence["Future[Any]"], shutdown: Callable[..., None]) -> List[Any]:
    """The JobReturns of a batch, in order (Hydra's ``Launcher.launch``); Ctrl-C shuts the engine down."""
    try:
        returns = [future.result() for future in futures]
    except BaseException:  # Ctrl-C: nothing may outlive the launcher
        shutdown(cancel=True)
        raise
    words = [status_word(r) for r in returns]
    pruned = f"{words.count(Status.PRUNED)} pruned, " if Status.PRUNED in words else ""
    log.info(
        "%s: %d jobs done: %d completed, %s%d failed", name, len(returns), words.count(Status.COMPLETED), pruned, words.count(Status.FAILED)
    )
    return returns


def number(config: Any, idx: int, job_id: str) -> Dict[str, str]:
    """Give a composed job config its number and id (as Hydra's launchers do); where its output goes."""
    from omegaconf import open_dict

    with open_dict(config):
        config.hydra.job.id = job_id
        config.hydra.job.num = idx
    hydra = config.hydra
    return {
        "output_dir": os.path.abspath(os.path.join(str(hydra.sweep.dir), str(hydra.sweep.subdir))),
        "name": str(hydra.job.name),
        "sweep_dir": str(hydra.sweep.dir),
    }


def run_numbered(hydra_context: Any, task_function: Any, config: Any) -> Any:
    """Run a numbered job config with Hydra's ``run_job``, in the sweep's directory layout.

    Hydra's launchers set ``HydraConfig`` before calling ``run_job``, which sets it again first
    thing; that extra copy of the Hydra node cost 7 ms per job here, so it is left out.
    """
    from hydra.core.utils import run_job

    return run_job(
        hydra_context=hydra_context,
        task_function=task_function,
        config=config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )
