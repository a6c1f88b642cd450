"""What a finished job means to a sweep: status, value, error, timing and where its log is.

Launchers return Hydra ``JobReturn``s, which say nothing of when a job ran,
and only once a whole batch is done. :class:`TimedTask` wraps the app's task
function so that each job writes its own record (start, end, status, value)
to ``<sweep dir>/.exp_jobs/<job num>.json`` as it ends. That works with every
launcher (in-process, joblib, submitit on another host sharing the disk), and
lets a resumed sweep keep jobs that finished before the driver was killed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import pickle
import socket
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from exp_compat.early_stopping.reporting import Pruned, begin_job, current_trial, end_job, plain_step
from exp_compat.files.columns import Status
from exp_compat.files.durable import write_atomic
from exp_compat.space.parameters import plain

JOBS_DIR = ".exp_jobs"
# A return value larger than this (pickled) is not kept whole: the driver would hold it and the results CSV
# would repeat it. It is replaced, in the job, by a short description; a dict keeps its small entries
# (its objective among them) and describes the large ones.
RESULT_BYTES = 1_000_000
ENTRY_BYTES = 10_000


def job_record_path(sweep_dir: Any, job_num: Any) -> Path:
    return Path(str(sweep_dir), JOBS_DIR, f"{job_num}.json")


def jsonable(value: Any) -> Any:
    """``value`` if JSON can hold it exactly (numpy scalars and 0-d tensors become Python numbers), else None."""
    value = plain(value)
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return None
    return value


def _size(value: Any) -> int:
    if value is None or isinstance(value, (bool, int, float)):
        return 0
    if isinstance(value, (str, bytes)):
        return len(value)
    try:
        return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # cannot be pickled: the launcher that has to send it back says so
        return 0


def kept_value(value: Any) -> Any:
    """The return value as the sweep keeps it (see ``RESULT_BYTES``)."""
    size = _size(value)
    if size <= RESULT_BYTES:
        return value

    def describe(item: Any, nbytes: int) -> str:
        return f"<{type(item).__name__} of {nbytes:,} bytes, too large to keep in the sweep's results>"

    logging.getLogger(__name__).warning(
        "the job returned %s bytes; the sweep keeps at most %s bytes of a result (a dict keeps its entries up to %s bytes each)",
        f"{size:,}",
        f"{RESULT_BYTES:,}",
        f"{ENTRY_BYTES:,}",
    )
    if isinstance(value, dict):
        sizes = {key: _size(item) for key, item in value.items()}
        return {key: item if sizes[key] <= ENTRY_BYTES else describe(item, sizes[key]) for key, item in value.items()}
    return describe(value, size)


class TimedTask:
    """The app's task function, writing a record of each job it runs.

    It also logs a failing job's traceback: Hydra's ``run_job`` keeps the
    exception in the ``JobReturn`` but writes it nowhere, so the job's log
    would not say why it failed.
    """

    def __init__(self, task_function: Callable[[Any], Any]):
        self.timed_function = task_function
        # updated=(): copying the callable's __dict__ could overwrite our own attribute.
        functools.update_wrapper(self, task_function, updated=())

    def __call__(self, cfg: Any) -> Any:
        record: Dict[str, Any] = {"started": time.time(), "pid": os.getpid(), "host": socket.gethostname()}
        begin_job()
        try:
            value = kept_value(self.timed_function(cfg))
        except Pruned as pruned:
            logging.getLogger(__name__).info("the job was %s", pruned)
            record.update(status=Status.PRUNED, value=pruned.value, steps=pruned.step)
            raise
        except Exception as error:
            logging.getLogger(__name__).exception("the job raised an exception")
            record.update(status=Status.FAILED, error=describe_error(error))
            raise
        else:
            record.update(status=Status.COMPLETED, value=jsonable(value), value_repr=_short(value))
            return value
        finally:
            trial = current_trial()
            end_job()
            if trial is not None and trial.step is not None:
                record.setdefault("steps", plain_step(trial.step))
            record["ended"] = time.time()
            _write_record(record)


def _write_record(record: Dict[str, Any]) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        hydra = HydraConfig.get()
        path = job_record_path(hydra.sweep.dir, hydra.job.num)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Atomic, so a reader never sees half a record; not durable (no fsync, milliseconds per job on a network
        # file system): a record lost with its host's crash only makes a resumed sweep run that job again.
        write_atomic(path, json.dumps(record, allow_nan=True), durable=False)
    except Exception:  # the record is bookkeeping; it must never fail a job
        pass


def read_record(sweep_dir: Any, job_num: Any) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(job_record_path(sweep_dir, job_num).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclasses.dataclass
class Outcome:
    """One finished job as the sweep records it."""

    status: Status
    value: Any = None
    error: str = ""
    started: Optional[float] = None
    ended: Optional[float] = None
    output_dir: Optional[str] = None
    log_path: Optional[str] = None
    steps: Any = None  # the last step the job reported, if it reported

    def __post_init__(self) -> None:  # the word read from a record or a results file, or ValueError
        self.status = Status(self.status)

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED

    @property
    def pruned(self) -> bool:
        return self.status is Status.PRUNED

    @property
    def duration_s(self) -> Optional[float]:
        if self.started is None or self.ended is None:
            return None
        return round(self.ended - self.started, 6)

    def fail(self, error: str) -> "Outcome":
        return dataclasses.replace(self, status=Status.FAILED, error=error)


def describe_error(error: Optional[BaseException]) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def outcome_of(job_return: Any, sweep_dir: Any) -> Outcome:
    """Read a Hydra ``JobReturn`` (and the job's own record, for timing) as an :class:`Outcome`.

    ``sweep_dir`` is the sweep's, resolved once: re-resolving the job's ``hydra.sweep.dir`` here
    would evaluate ``${now:...}`` again, later, and name another directory.
    """
    from hydra.core.utils import JobStatus

    from exp_compat._hydra_internals import job_error

    outcome = Outcome(Status.COMPLETED)
    hydra_cfg = getattr(job_return, "hydra_cfg", None)
    if hydra_cfg is not None:
        hydra = hydra_cfg.hydra
        outcome.output_dir = str(hydra.runtime.output_dir)
        log = Path(outcome.output_dir, f"{hydra.job.name}.log")
        outcome.log_path = str(log) if log.exists() else None
        record = read_record(sweep_dir, hydra.job.num) or {}
        outcome.started, outcome.ended = record.get("started"), record.get("ended")
        outcome.steps = record.get("steps")
    if job_return.status == JobStatus.FAILED:
        error = job_error(job_return)
        if isinstance(error, Pruned):
            return dataclasses.replace(outcome, status=Status.PRUNED, value=error.value, steps=error.step)
        return outcome.fail(describe_error(error))
    outcome.value = job_return.return_value
    return outcome


def outcome_from_record(record: Dict[str, Any]) -> Optional[Outcome]:
    """The outcome of a job that finished while no driver was there to hear it (None if it never finished)."""
    if record.get("status") not in tuple(Status) or "ended" not in record:
        return None
    value = record.get("value")
    if record["status"] == Status.COMPLETED and value is None and record.get("value_repr") not in (None, "None"):
        return None  # its return value could not be saved: run it again rather than guess
    return Outcome(
        record["status"],
        value=value,
        error=record.get("error", ""),
        started=record.get("started"),
        ended=record.get("ended"),
        steps=record.get("steps"),
    )


def objective_of(value: Any, key: Optional[str] = None, what: str = "objective") -> float:
    """The number a task returned, or ValueError saying why it is not one.

    Accepts int, float, numpy scalars and anything 0-d with ``float()`` (a
    tensor); with ``key``, a dict's entry (``what`` the key is, for the message).
    Booleans, NaN and inf are refused.
    """
    if key is not None:
        if not isinstance(value, dict) and not hasattr(value, "keys"):
            raise ValueError(f"returned {_short(value)}, expected a dict with the {what} key {key!r}")
        if key not in value:
            raise ValueError(f"returned a dict without the {what} key {key!r} (keys: {', '.join(map(str, value))})")
        value = value[key]
    if isinstance(value, (bool, str, bytes)) or value is None or isinstance(value, (dict, list, tuple)):
        raise ValueError(f"returned {_short(value)}, expected a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"returned {_short(value)}, expected a number") from None
    if not math.isfinite(number):
        raise ValueError(f"returned {number}, expected a finite number")
    return number


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
