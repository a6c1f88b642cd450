"""What a finished job means to a sweep: status, value, error, timing and where its log is.

Launchers return Hydra ``JobReturn``s, which say nothing of when a job ran.
:class:`TimedTask` wraps the app's task function so that each job writes its
own start and end times into its output directory, which works with every
launcher (in-process, joblib, submitit on another host sharing the disk).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Optional

TIMING_FILE = ".exp_job.json"


class TimedTask:
    """The app's task function, recording start/end time, pid and host of each job it runs.

    It also logs a failing job's traceback: Hydra's ``run_job`` keeps the
    exception in the ``JobReturn`` but writes it nowhere, so the job's log
    would not say why it failed.
    """

    def __init__(self, task_function: Callable[[Any], Any]):
        self.timed_function = task_function
        # updated=(): copying the callable's __dict__ could overwrite our own attribute.
        functools.update_wrapper(self, task_function, updated=())

    def __call__(self, cfg: Any) -> Any:
        started = time.time()
        try:
            return self.timed_function(cfg)
        except Exception:
            logging.getLogger(__name__).exception("the job raised an exception")
            raise
        finally:
            _write_timing(started, time.time())


def _write_timing(started: float, ended: float) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        output_dir = HydraConfig.get().runtime.output_dir
        record = {"started": started, "ended": ended, "pid": os.getpid(), "host": socket.gethostname()}
        Path(output_dir, TIMING_FILE).write_text(json.dumps(record), encoding="utf-8")
    except Exception:  # timing is informative; it must never fail a job
        pass


@dataclasses.dataclass
class Outcome:
    """One finished job as the sweep records it."""

    status: str  # "completed" or "failed"
    value: Any = None
    error: str = ""
    started: Optional[float] = None
    ended: Optional[float] = None
    output_dir: Optional[str] = None
    log_path: Optional[str] = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def duration_s(self) -> Optional[float]:
        if self.started is None or self.ended is None:
            return None
        return round(self.ended - self.started, 6)

    def fail(self, error: str) -> "Outcome":
        return dataclasses.replace(self, status="failed", error=error)


def describe_error(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def outcome_of(job_return: Any) -> Outcome:
    """Read a Hydra ``JobReturn`` (and the job's timing file) as an :class:`Outcome`."""
    from hydra.core.utils import JobStatus

    output_dir = None
    log_path = None
    started = ended = None
    hydra_cfg = getattr(job_return, "hydra_cfg", None)
    if hydra_cfg is not None:
        output_dir = str(hydra_cfg.hydra.runtime.output_dir)
        log = Path(output_dir, f"{hydra_cfg.hydra.job.name}.log")
        log_path = str(log) if log.exists() else None
        try:
            timing = json.loads(Path(output_dir, TIMING_FILE).read_text(encoding="utf-8"))
            started, ended = timing["started"], timing["ended"]
        except (OSError, ValueError, KeyError):
            pass
    outcome = Outcome("completed", started=started, ended=ended, output_dir=output_dir, log_path=log_path)
    if job_return.status == JobStatus.FAILED:
        return outcome.fail(describe_error(job_return._return_value))
    outcome.value = job_return.return_value
    return outcome


def objective_of(value: Any, key: Optional[str] = None) -> float:
    """The number a task returned, or ValueError saying why it is not one.

    Accepts int, float, numpy scalars and anything 0-d with ``float()`` (a
    tensor); with ``key``, a dict's entry. Booleans, NaN and inf are refused.
    """
    if key is not None:
        if not isinstance(value, dict) and not hasattr(value, "keys"):
            raise ValueError(f"returned {_short(value)}, expected a dict with the objective key {key!r}")
        if key not in value:
            raise ValueError(f"returned a dict without the objective key {key!r} (keys: {', '.join(map(str, value))})")
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
