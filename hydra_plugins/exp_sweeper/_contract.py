"""The asynchronous half of the contract between a sweep and its launcher, in the style of ``concurrent.futures``.

Every Hydra launcher offers the batch half, ``Launcher.launch``. A launcher that
also offers this protocol lets the sweep keep every slot busy: submit a job the
moment a slot frees, and get a ``Future`` of its ``JobReturn``. The exp
launchers implement it (``hydra_plugins/exp_launcher/_launcher.py``) without
importing it: a ``Protocol`` is matched by shape, so sweepers and launchers
stay independent of each other, and tests/test_contract.py checks the match.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Optional, Protocol, Sequence, runtime_checkable

from hydra.core.utils import JobReturn


@runtime_checkable
class AsyncLauncher(Protocol):
    @property
    def slots(self) -> int:
        """How many jobs run at once."""

    @property
    def ahead(self) -> int:
        """How many jobs beyond ``slots`` are worth submitting: the launcher hands them to busy slots, which
        start them the moment their current job ends, with no round trip (0: they would only wait in a
        queue). A sweep whose next jobs do not depend on results keeps ``slots + ahead`` in flight."""

    def start(self, max_jobs: Optional[int] = None) -> None:
        """Start the slots before the first job (the sweep calls it while it still loads), no more than
        ``max_jobs`` when the sweep knows how many jobs it can run."""

    def submit(self, overrides: Sequence[str], job_idx: int) -> Future[JobReturn]:
        """Run one job as soon as a slot is free. The future resolves to the job's ``JobReturn``, a FAILED one
        when the job raised, its process died, it timed out or was cancelled once running; it raises only if
        it was cancelled before it ran."""

    def end(self, job_idx: int) -> None:
        """End job ``job_idx`` now if it runs (its future resolves to a FAILED ``JobReturn``); a no-op if it has
        ended. The sweep ends this way a job that goes on after the pruner stopped it, to free its slot."""

    def shutdown(self, cancel: bool = True) -> None:
        """Cancel queued jobs and kill running ones (``cancel``; they run again on resume), or wait for them."""

    def end_earlier_jobs(self) -> None:
        """End the jobs that an earlier, killed run of this sweep left running, before the sweep reads which
        jobs finished (a no-op where jobs die with their driver)."""
