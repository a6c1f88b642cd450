"""The thin Hydra launcher class both exp launchers are: options in, the engine imported on setup."""

from __future__ import annotations

import abc
import importlib
from concurrent.futures import Future
from typing import Any, List, Optional, Protocol, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class Engine(Protocol):
    """What each exp launcher's engine (``_local.LocalEngine``, ``_slurm.SlurmEngine``) implements."""

    @property
    def slots(self) -> int: ...

    @property
    def ahead(self) -> int: ...

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> List[JobReturn]: ...

    def start(self, max_jobs: Optional[int] = None) -> None: ...

    def submit(self, overrides: Sequence[str], job_idx: int) -> "Future[JobReturn]": ...

    def end(self, job_idx: int) -> None: ...

    def shutdown(self, cancel: bool = True) -> None: ...

    def end_earlier_jobs(self) -> None: ...


class EngineLauncher(Launcher):
    """Batch ``launch`` and per-job ``submit`` over an engine imported only when jobs are launched.

    The asynchronous contract (declared by the sweepers as ``AsyncLauncher`` in
    ``hydra_plugins/exp_sweeper/_contract.py``), in the style of ``concurrent.futures``:
    ``submit(overrides, job_idx)`` starts the job as soon as a slot is free and
    returns a ``Future`` that resolves to the job's ``JobReturn`` (a failed job,
    a crashed worker, a cancelled or timed-out job resolve to a FAILED
    ``JobReturn``; the future raises only if it was cancelled before it ran).
    ``slots`` says how many jobs run at once; ``shutdown(cancel=True)`` cancels
    queued jobs and kills running ones, ``shutdown(cancel=False)`` waits for
    them. ``launch`` is the same engine, waiting for a whole batch.
    """

    @property
    @abc.abstractmethod
    def engine(self) -> str:
        """``module:Class`` of the engine; abstract, so that Hydra's plugin scan lists only the real launchers."""

    def __init__(self, **options: Any):
        self.options = options
        self.impl: Optional[Engine] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        module, name = self.engine.split(":")
        engine = getattr(importlib.import_module(module), name)
        self.impl = engine(self.options, hydra_context=hydra_context, task_function=task_function, config=config)

    @property
    def slots(self) -> int:
        assert self.impl is not None, "setup() first"
        return self.impl.slots

    @property
    def ahead(self) -> int:
        assert self.impl is not None, "setup() first"
        return self.impl.ahead

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.impl is not None, "setup() first"
        return self.impl.launch(job_overrides, initial_job_idx)

    def start(self, max_jobs: Optional[int] = None) -> None:
        """Start the slots (worker processes) before the first job, where the engine has any to start;
        ``max_jobs`` (the sweep's size, when known) keeps it from starting more workers than jobs."""
        assert self.impl is not None, "setup() first"
        self.impl.start(max_jobs=max_jobs)

    def end_earlier_jobs(self) -> None:
        """End the jobs that an earlier, killed run of this sweep left running, where the engine's jobs can
        outlive their driver (SLURM's do; exp_local's workers die with it)."""
        assert self.impl is not None, "setup() first"
        self.impl.end_earlier_jobs()

    def submit(self, overrides: Sequence[str], job_idx: int) -> "Future[JobReturn]":
        assert self.impl is not None, "setup() first"
        return self.impl.submit(overrides, job_idx)

    def end(self, job_idx: int) -> None:
        """End one running job now (the sweep stopped its trial and it went on); a no-op once it ended."""
        assert self.impl is not None, "setup() first"
        self.impl.end(job_idx)

    def shutdown(self, cancel: bool = True) -> None:
        if self.impl is not None:
            self.impl.shutdown(cancel=cancel)
