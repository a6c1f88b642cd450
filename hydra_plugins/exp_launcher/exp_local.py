"""The exp_local Hydra launcher (thin: the work is in _local.py, imported when jobs are launched)."""
from concurrent.futures import Future
from typing import Any, Optional, Sequence

from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig


class ExpLocalLauncher(Launcher):
    """Persistent worker processes, one device slot each; batch ``launch`` and per-job ``submit``.

    The asynchronous contract, in the style of ``concurrent.futures``:
    ``submit(overrides, job_idx)`` starts the job as soon as a slot is free and
    returns a ``Future`` that resolves to the job's ``JobReturn`` (a failed job,
    a crashed worker or a timeout resolve to a FAILED ``JobReturn``; the future
    raises only if it was cancelled). ``slots`` says how many jobs run at once;
    ``shutdown(cancel=True)`` cancels queued jobs and kills running ones,
    ``shutdown(cancel=False)`` waits for them. ``launch`` is the same engine,
    waiting for a whole batch.
    """

    def __init__(self, **options: Any):
        self.options = options
        self.impl: Optional[Any] = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        from hydra_plugins.exp_launcher._local import LocalEngine

        self.impl = LocalEngine(self.options, hydra_context=hydra_context, task_function=task_function, config=config)

    @property
    def slots(self) -> int:
        assert self.impl is not None, "setup() first"
        return self.impl.slots

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[Any]:
        assert self.impl is not None, "setup() first"
        return self.impl.launch(job_overrides, initial_job_idx)

    def submit(self, overrides: Sequence[str], job_idx: int) -> "Future[Any]":
        assert self.impl is not None, "setup() first"
        return self.impl.submit(overrides, job_idx)

    def shutdown(self, cancel: bool = True) -> None:
        if self.impl is not None:
            self.impl.shutdown(cancel=cancel)
