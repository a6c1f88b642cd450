"""Intermediate results from a running job, and the sweep's answer: ``report(step, value)`` and ``Pruned``.

A training loop calls ``report`` once per epoch (or any step that grows). Under
an exp sweep the report is recorded (the sweep's curves file); with a pruner,
the sweep also decides at a few steps, its *rungs*, whether the trial goes on,
and ``report`` raises :class:`Pruned` when it must not. Everywhere else (a
plain ``python train.py``, Hydra's own sweepers, a test that calls the
function) it returns at once and never raises, so one training script serves
every way of running it.

The sweep reaches the job through two environment variables, set per job in
Hydra's ``hydra.job.env_set`` (so every launcher carries them, to any host):
``EXP_REPORT`` names the job's channel (a file on the sweep's disk that the
job appends its reports to, and beside it one decision file per rung) and
``EXP_RUNGS`` says at which steps a decision is due. Reports between rungs
cost one small append and never wait; a report at a rung waits until the
sweep has decided, so a stopped trial runs no step past its rung. Both sides
use :class:`Rungs`, so they never disagree on where the rungs are. On one
machine a :class:`Bell` (``EXP_REPORT_BELL``) wakes the other side at once
instead of at its next look at the files.

A report belongs to the job that was running when the reporting thread or
process started, not to whatever job the environment names when it reports:
an exp_local worker runs many jobs in turn, and a thread a job left running
must not write into the next job's curve. The sweep binds each job at its
start (:func:`begin_job`, in the job's process); a thread alive before that,
or a report after the job ended, is late: dropped, and counted in the log.
Child processes (``fork``, ``multiprocessing``, DataLoader workers) report for
their job too; once the sweep stops a trial it writes ``<channel>.stop``, and
whichever process of the job reports next raises :class:`Pruned`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import secrets
import select
import socket
import threading
import time
from typing import Any, Dict, FrozenSet, List, Optional

from exp_compat.early_stopping.rungs import Rungs
from exp_compat.files.columns import check_name

REPORT_ENV = "EXP_REPORT"
RUNGS_ENV = "EXP_RUNGS"
BELL_ENV = "EXP_REPORT_BELL"
# A report at a rung polls for the sweep's decision every FIRST_POLL_S for FAST_POLL_S (a driver on the same
# machine answers within that), then less and less often, up to MAX_POLL_S; it goes on training (with a
# warning) if none comes within DECISION_TIMEOUT_S (the job's EXP_DECISION_TIMEOUT_S, if set): a lost driver
# must not hang a GPU job.
FIRST_POLL_S = 0.0005
FAST_POLL_S = 0.05
MAX_POLL_S = 0.05
DECISION_TIMEOUT_S = 600.0
DECISION_TIMEOUT_ENV = "EXP_DECISION_TIMEOUT_S"
CONTINUE, STOP = "continue", "stop"

log = logging.getLogger(__name__)


class _Stopped(Exception):
    """A trial's end at a report, with the step and value it ended at (picklable: it travels back to the sweep
    in the job's result, from any launcher)."""

    def __init__(self, step: Any = None, value: Any = None):
        super().__init__(step, value)
        self.step = step
        self.value = value


class Pruned(_Stopped):
    """The sweep stopped this trial at a rung: let it propagate (the job ends as ``pruned``, its last reported
    value as its result)."""

    def __str__(self) -> str:
        return f"stopped by the sweep's pruner at step {self.step} (value {self.value})"


class Diverged(_Stopped):
    """``report`` received NaN or inf: the trial stops at once and counts as failed."""

    def __str__(self) -> str:
        return f"diverged at step {self.step} (value {self.value})"


class Bell:
    """A wake-up call between processes of one machine: a datagram socket in Linux's abstract namespace (no
    file to clean up, gone with its process). Waiting on it returns as soon as someone rings, or after the
    timeout; where a ring cannot arrive (another host, another network namespace), both sides simply look
    at the channel's files again after their timeout."""

    def __init__(self) -> None:
        self.name = f"exp-report-{os.getpid()}-{secrets.token_hex(8)}"
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind("\0" + self.name)
        self.socket.setblocking(False)

    def wait(self, timeout: float) -> List[str]:
        """What the rings since the last wait said (who rang), once one came or the timeout passed."""
        said = []
        if select.select([self.socket], [], [], timeout)[0]:
            try:
                while True:
                    said.append(self.socket.recv(64).decode("utf-8", "replace"))
            except OSError:  # drained
                pass
        return said

    def close(self) -> None:
        self.socket.close()


def ring(name: Any, message: str = "") -> None:
    """Wake whoever waits on the bell ``name``, if it is on this machine, saying ``message``; never fails."""
    if not isinstance(name, str) or not 0 < len(name) < 100:
        return
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.setblocking(False)  # a bell nobody drains fills up: ringing it must not wait (it is ringing already)
            sender.sendto(message.encode("utf-8")[:64], "\0" + name)
    except OSError:
        pass


_bells: Dict[int, Optional[Bell]] = {}


def _own_bell() -> Optional[Bell]:
    """This process's bell (one per process: an exp_local worker forks, and a child must not share its parent's)."""
    pid = os.getpid()
    if pid not in _bells:
        try:
            _bells[pid] = Bell()
        except (OSError, AttributeError):  # no AF_UNIX, or no abstract namespace: the job polls
            _bells[pid] = None
    return _bells[pid]


def decision_path(channel: str, rung: int) -> str:
    return f"{channel}.{rung}.decision"


def stop_path(channel: str) -> str:
    """The mark the sweep leaves once it stopped a trial: the step and value it stopped at."""
    return f"{channel}.stop"


@dataclasses.dataclass
class _Trial:
    """A job as ``report`` tracks it in one process (an exp_local worker runs many jobs in turn)."""

    channel: str
    rungs: Optional[Rungs]
    # Bound at the job's start by the sweep (begin_job): the threads alive then belong to earlier jobs, and a
    # report after end_job is late. Read from the environment instead (a spawned child process): neither.
    bound: bool = False
    earlier_threads: FrozenSet[threading.Thread] = frozenset()
    ended: bool = False
    next_rung: int = 0
    step: Optional[float] = None
    value: Optional[float] = None
    stopped: Optional[Pruned] = None


_current: Optional[_Trial] = None
_late_reports = 0


def _env_rungs() -> Optional[Rungs]:
    """The rungs the sweep gave the job in its environment (None: no pruner)."""
    rungs = os.environ.get(RUNGS_ENV)
    return Rungs.from_text(rungs) if rungs else None


def begin_job() -> None:
    """Bind the reports of this process, its threads started from now on and its child processes to the job
    that the environment names (the sweep calls this as each job starts, in the job's process)."""
    global _current
    channel = os.environ.get(REPORT_ENV)
    if not channel:
        _current = None
        return
    here = threading.current_thread()
    earlier = frozenset(thread for thread in threading.enumerate() if thread is not here)
    _current = _Trial(channel, _env_rungs(), bound=True, earlier_threads=earlier)
    try:  # the channel exists from the job's start: a report that finds it gone comes after the sweep recorded the job
        with open(channel + ".jsonl", "a", encoding="utf-8"):
            pass
    except OSError:
        pass


def end_job() -> None:
    """The job ended: whatever its threads report from now on is late."""
    if _current is not None and _current.bound:
        _current.ended = True


def current_trial() -> Optional[_Trial]:
    """The trial that this job reported for (None when it reported nothing, or runs outside an exp sweep)."""
    channel = os.environ.get(REPORT_ENV)
    if _current is not None and _current.bound:
        return _current
    return _current if _current is not None and channel and _current.channel == channel else None


def _trial() -> Optional[_Trial]:
    """The trial this call reports for; None outside an exp sweep; ``_LATE`` for a report of a job that ended."""
    global _current
    if _current is not None and _current.bound:
        late = _current.ended or threading.current_thread() in _current.earlier_threads
        return _LATE if late else _current
    channel = os.environ.get(REPORT_ENV)
    if not channel:
        return None
    if _current is None or _current.channel != channel:
        _current = _Trial(channel, _env_rungs())
    return _current


_LATE = _Trial("", None)


def _dropped(step: Any) -> None:
    """Count a late report; say so in the log at the 1st, 10th, 100th... one (a chatty thread must not flood it)."""
    global _late_reports
    _late_reports += 1
    if math.log10(_late_reports).is_integer():
        log.warning(
            "report(step=%r) came from a thread started before this job (or from a job that has ended): dropped, %d so far "
            "in this process. A report belongs to the job that ran when its thread started: create thread pools in the job",
            step,
            _late_reports,
        )


def _stopped_mark(channel: str) -> Optional[Pruned]:
    """The sweep's stop of this trial, if it stopped it (from any process of the job)."""
    try:
        with open(stop_path(channel), encoding="utf-8") as handle:
            mark = json.load(handle)
    except (OSError, ValueError):
        return None
    return Pruned(mark.get("step"), mark.get("value"))


def _number(name: str, value: Any) -> float:
    """``value`` as a float (ints, floats, numpy scalars, 0-d tensors), or TypeError naming it."""
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise TypeError(f"report(): {name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"report(): {name} must be a number, got {value!r}") from None


def _append(trial: _Trial, line: Dict[str, Any]) -> None:
    """Append one report to the channel. A job bound at its start never creates it: FileNotFoundError then means
    that the sweep has recorded the job (and removed its channel)."""
    flags = os.O_WRONLY | os.O_APPEND | (0 if trial.bound else os.O_CREAT)
    fd = os.open(trial.channel + ".jsonl", flags, 0o644)
    try:
        os.write(fd, (json.dumps(line, allow_nan=True) + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def report(step: Any, value: Any, **metrics: Any) -> None:
    """Record the objective ``value`` reached at ``step`` (an epoch, an iteration: a number that grows), with
    any other numbers to keep (``accuracy=0.91``); raise :class:`Pruned` when the sweep stops this trial.

    Outside an exp sweep, this does nothing. In one, NaN or inf ends the trial as failed (:class:`Diverged`),
    so that its slot is freed at once. Any thread or child process of the job may report; once the sweep has
    stopped the trial, every report raises :class:`Pruned` again: catching it does not continue the trial.
    """
    trial = _trial()
    if trial is None:
        return
    if trial is _LATE:
        _dropped(step)
        return
    at = _number("step", step)
    if not math.isfinite(at):
        raise ValueError(f"report(): step must be a finite number, got {step!r}")
    number = _number("value", value)
    numbers = {}
    for key, metric in metrics.items():
        check_name(key, "report(): the metric")
        numbers[key] = _number(f"metric {key!r}", metric)
    stopped = trial.stopped or _stopped_mark(trial.channel)
    if stopped is not None:
        if trial.stopped is None:
            trial.stopped = stopped
        else:
            log.warning("report(step=%r) after the sweep stopped this trial at step %s: it stays stopped", step, stopped.step)
        raise stopped
    if trial.step is not None and at <= trial.step:
        raise ValueError(f"report(): step must grow from one report to the next, got {step!r} after {trial.step!r}")
    rung = trial.rungs.crossed(at, trial.next_rung) if trial.rungs is not None and math.isfinite(number) else None
    line: Dict[str, Any] = {"step": plain_step(at), "value": number, "metrics": numbers}
    # Read before the report is sent: a bad setting fails the job before the sweep can decide (and stop) its trial.
    timeout_s = decision_timeout_s() if rung is not None else DECISION_TIMEOUT_S
    bell = _own_bell() if rung is not None else None
    if rung is not None:
        line["rung"] = rung
        if bell is not None:
            line["bell"] = bell.name
    try:
        _append(trial, line)
    except FileNotFoundError:
        if trial.bound:  # the sweep has recorded this job already: a child process that outlived it
            _dropped(step)
            return
        log.warning("report(step=%s) could not reach the sweep (its channel is gone): going on without its decision", step)
        rung = None
    except OSError as error:  # a full or lost disk must not end hours of training: this report is lost, not the job
        log.warning("report(step=%s) could not reach the sweep (%s): going on without its decision", step, error)
        rung = None
    trial.step, trial.value = at, number
    if not math.isfinite(number):
        raise Diverged(plain_step(at), number)
    if rung is None:
        return
    trial.next_rung = rung + 1
    ring(os.environ.get(BELL_ENV), os.path.basename(trial.channel))  # the sweep reads this job's channel at once
    if _decision(trial.channel, rung, bell, timeout_s) == STOP:
        trial.stopped = Pruned(plain_step(at), number)
        raise trial.stopped


def plain_step(step: float) -> Any:
    """A step as the user wrote it: 3, not 3.0."""
    return int(step) if step.is_integer() else step


def decision_timeout_s() -> float:
    """How long a report at a rung waits for the sweep's decision: a job may expect its driver to be lost
    (preemptible driver nodes) or slow (a driver far from a cluster's shared disk)."""
    text = os.environ.get(DECISION_TIMEOUT_ENV)
    if text is None:
        return DECISION_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ValueError(f"{DECISION_TIMEOUT_ENV} must be a number of seconds > 0, got {text!r}")
    return seconds


def _decision(channel: str, rung: int, bell: Optional[Bell], timeout_s: float) -> str:
    path = decision_path(channel, rung)
    started = time.monotonic()
    deadline = started + timeout_s
    pause = FIRST_POLL_S
    while True:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            log.warning("no decision from the sweep at rung %d within %g s: going on", rung, timeout_s)
            return CONTINUE
        if bell is not None:
            bell.wait(pause)
        else:
            time.sleep(pause)
        if time.monotonic() - started > FAST_POLL_S:  # a driver that answers late is a busy or remote one
            pause = min(2 * pause, MAX_POLL_S)
