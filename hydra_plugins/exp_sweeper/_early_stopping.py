"""The sweep's end of the report channel: reads what running jobs report, decides at rungs, records both.

Each job appends its reports to ``.exp_jobs/reports/<job num>.jsonl`` (see
``exp_compat.early_stopping.reporting``); a thread of the sweep driver reads the new lines of
every running job's file, appends each report to ``<name>_curves.csv``, and,
with a pruner, at a rung asks it, journals the decision in
``.exp_jobs/rungs.jsonl`` (flushed before the job hears it) and writes the
decision file the job waits for. Without a pruner no job waits, and the thread
looks at the files about once a second: the curves are recorded all the same.
Files on the sweep's disk work with every launcher, Hydra's blocking
``Launcher.launch`` ones included (the thread decides while the sweep waits in
``launch``), and across hosts that share the disk (SLURM).

A resumed sweep replays the rung journal: the pruner holds the same values at
the same rungs, and a trial that runs again (under a new job number) is told
the decision already taken at each rung it had reached, never a new one. A
requeued SLURM job appends to its file again from its first step: a step at or
before one already read is a repeat, and the first value stands.

A stop is final. Once the pruner stops a trial, the sweep leaves a stop mark
in its channel (every process of the job raises ``Pruned`` at its next report),
answers stop at every later rung without asking the pruner again, and records
the trial as pruned whatever the job then returns or raises (a job may catch
``Pruned``, or report from a thread). A job still running ``PRUNED_GRACE_S``
after its stop is ended through the launcher, where it can end one job, so that
its slot goes to the next trial.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional

from exp_compat.early_stopping.pruners import Pruner
from exp_compat.early_stopping.reporting import (
    BELL_ENV,
    CONTINUE,
    REPORT_ENV,
    RUNGS_ENV,
    STOP,
    Bell,
    decision_path,
    plain_step,
    ring,
    stop_path,
)
from exp_compat.files.durable import json_lines, remove_temporaries, write_atomic
from hydra_plugins.exp_sweeper._outcome import JOBS_DIR
from hydra_plugins.exp_sweeper._results import CurvesStore

log = logging.getLogger("hydra_plugins.exp_sweeper")

# The reading thread's pause between two looks at the files of the jobs that report: short enough that a job
# waiting at a rung hears within milliseconds, growing with their number so that a big cluster sweep does not
# read thousands of files on a network disk every few milliseconds. Jobs that have not reported yet (a batch
# launcher's queued chunk: 1,000 by default) are looked at every MAX_POLL_S, or at once when they ring.
BASE_POLL_S = 0.002
POLL_S_PER_JOB = 0.0002
MAX_POLL_S = 0.2
UNJUDGED_POLL_S = 1.0  # without a pruner nobody waits: the curves only need to keep up with the jobs
# How long a stopped trial's job may take to end by itself (Pruned propagating, its DataLoader workers and
# `finally` blocks ending) before the sweep asks the launcher to end it.
PRUNED_GRACE_S = 2.0


def trial_key(extra: Mapping[str, Any]) -> str:
    """A trial's name that survives a resume (its job number does not): its configuration id and run."""
    return f"{extra.get('id')}:{extra.get('run', 1)}"


class Stop(NamedTuple):
    """Where the pruner stopped a trial: its result as a pruned trial."""

    step: Any
    value: float


@dataclasses.dataclass
class Watched:
    key: str
    channel: str
    offset: int = 0
    step: Optional[float] = None
    value: Optional[float] = None


class EarlyStopping:
    """Every exp sweep reads what its jobs report (the curves); ``pruner`` (None: no early stopping) decides."""

    def __init__(
        self,
        pruner: Optional[Pruner],
        sign: float,
        sweep_dir: Path,
        name: str,
        resume: bool,
        end_job: Optional[Callable[[int], None]] = None,
    ):
        self.pruner = pruner
        self.end_job = end_job  # the launcher's way to end one running job, where it has one
        self.sign = sign
        self.channels = sweep_dir / JOBS_DIR / "reports"
        self.channels.mkdir(parents=True, exist_ok=True)
        remove_temporaries(self.channels)  # decision files a killed sweep was writing: only the driver writes here
        journal = sweep_dir / JOBS_DIR / "rungs.jsonl"
        self.decisions: Dict[str, Dict[int, bool]] = {}
        self.stops: Dict[str, Stop] = {}  # the trials the pruner stopped
        self.overdue: Dict[int, float] = {}  # stopped jobs still running: when to end them
        if pruner is not None and resume and journal.exists():
            for entry in json_lines(journal):
                pruner.record(entry["trial"], entry["rung"], sign * entry["value"])
                self.decisions.setdefault(entry["trial"], {})[entry["rung"]] = entry["continue"]
                if not entry["continue"]:
                    self.stops.setdefault(entry["trial"], Stop(entry["step"], entry["value"]))
        self._journal = open(journal, "a", encoding="utf-8") if pruner is not None else None
        self.slowest_poll_s = MAX_POLL_S if pruner is not None else UNJUDGED_POLL_S
        self.curves = CurvesStore(sweep_dir / f"{name}_curves.csv", resume)
        self.watched: Dict[int, Watched] = {}
        self.reporting: Dict[int, Watched] = {}  # the watched jobs that have reported
        self._lock = threading.Lock()
        self._closing = threading.Event()
        try:  # jobs on this machine ring it after a report at a rung, and hear the decision at once
            self.bell: Optional[Bell] = Bell() if pruner is not None else None
        except (OSError, AttributeError):
            self.bell = None
        self._thread = threading.Thread(target=self._read_loop, name="exp-report-channel", daemon=True)
        self._thread.start()

    def watch(self, job_num: int, extra: Mapping[str, Any]) -> Dict[str, str]:
        """Start reading job ``job_num``'s channel; the environment variables that tell the job where it is."""
        key = trial_key(extra)
        channel = self._channel(job_num)
        with self._lock:
            self.watched[job_num] = Watched(key, channel)
        if self.pruner is None:
            return {REPORT_ENV: channel}
        env = {REPORT_ENV: channel, RUNGS_ENV: self.pruner.rungs(key).to_text()}
        return {**env, BELL_ENV: self.bell.name} if self.bell is not None else env

    def finished(self, job_num: int) -> Optional[Watched]:
        """The job ended: read what it reported last, stop reading its channel. None if it was not watched."""
        with self._lock:
            watched = self.watched.pop(job_num, None)
            self.reporting.pop(job_num, None)
            if watched is None:
                return None
            self._read(job_num, watched)
        return watched

    def stopped(self, extra: Mapping[str, Any]) -> Optional[Stop]:
        """Where the pruner stopped this trial (None: it did not)."""
        return self.stops.get(trial_key(extra))

    def forget(self, job_num: int, extra: Mapping[str, Any]) -> None:
        """Remove job ``job_num``'s channel and decision files: its result is in the results file (the channel
        was read into the curves), or a resume runs it again under a new number. A sweep of 10^5 jobs must not
        leave 10^5 files, nor a job of 10^6 reports a second copy of them."""
        channel = self._channel(job_num)
        paths = [
            channel + ".jsonl",
            stop_path(channel),
            *(decision_path(channel, rung) for rung in self.decisions.get(trial_key(extra), {})),
        ]
        for path in paths:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def catch_up(self, job_num: int, extra: Mapping[str, Any]) -> Watched:
        """A job that finished while no sweep was reading (a resumed sweep): its reports the curves lack."""
        watched = Watched(trial_key(extra), self._channel(job_num), step=self.curves.last_steps.get(str(job_num)))
        with self._lock:
            self._read(job_num, watched, decide=False)
        return watched

    def _channel(self, job_num: int) -> str:
        """Job ``job_num``'s channel: ``<channel>.jsonl`` its reports, ``<channel>.<rung>.decision`` the answers."""
        return str(self.channels / str(job_num))

    def close(self) -> None:
        self._closing.set()
        if self.bell is not None:
            ring(self.bell.name)
        self._thread.join()
        if self.bell is not None:
            self.bell.close()
        if self._journal is not None:
            self._journal.close()
        self.curves.close()

    def _read_loop(self) -> None:
        pause, quiet_read_at = BASE_POLL_S, 0.0
        while not self._closing.is_set():
            rang: List[str] = self.bell.wait(pause) if self.bell is not None else []
            if self.bell is None:
                self._closing.wait(pause)
            now = time.monotonic()
            everyone = now - quiet_read_at >= self.slowest_poll_s
            quiet_read_at = now if everyone else quiet_read_at
            with self._lock:
                jobs = dict(self.watched) if everyone else {**self.reporting, **self._rang(rang)}
                for job_num, watched in jobs.items():
                    try:
                        self._read(job_num, watched)
                    except Exception:  # one job's garbage must not end the channel of every other job
                        log.exception("exp: cannot read the reports of job #%d (%s.jsonl)", job_num, watched.channel)
                    if watched.offset and job_num in self.watched:
                        self.reporting[job_num] = watched
                pause = self.slowest_poll_s
                if self.pruner is not None:  # a job waiting at a rung hears within milliseconds
                    pause = min(pause, BASE_POLL_S + POLL_S_PER_JOB * len(self.reporting))
                overdue = [n for n, at in self.overdue.items() if at <= now or n not in self.watched]
                for job_num in overdue:
                    del self.overdue[job_num]
            for job_num in overdue:
                self._end(job_num)

    def _end(self, job_num: int) -> None:
        """End a stopped job that did not end by itself (the launcher resolves its future; it is recorded pruned)."""
        with self._lock:
            if job_num not in self.watched or self.end_job is None:
                return
        log.warning(
            "exp: job #%d goes on %.0f s after the pruner stopped it (it caught Pruned, or reports from a thread): ending it",
            job_num,
            PRUNED_GRACE_S,
        )
        try:
            self.end_job(job_num)
        except Exception:  # the launcher could not: the job ends on its own, and is recorded pruned all the same
            log.exception("exp: could not end job #%d", job_num)

    def _rang(self, said: List[str]) -> Dict[int, Watched]:
        """The watched jobs that rang the bell (each says its job number)."""
        numbers = [int(text) for text in said if text.isdigit()]
        return {n: self.watched[n] for n in numbers if n in self.watched}

    def _read(self, job_num: int, watched: Watched, decide: bool = True) -> None:
        path = watched.channel + ".jsonl"
        try:
            if os.stat(path).st_size <= watched.offset:
                return
            with open(path, "rb") as handle:
                handle.seek(watched.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        watched.offset += end
        for line in data[:end].splitlines():
            try:
                entry = json.loads(line)
                step, value = float(entry["step"]), float(entry["value"])
            except (ValueError, KeyError, TypeError):
                continue
            rung = entry.get("rung")
            if watched.step is None or step > watched.step:
                watched.step, watched.value = step, value
                metrics = entry.get("metrics")
                self.curves.append(job_num, plain_step(step), value, metrics if isinstance(metrics, dict) else {})
            elif not isinstance(rung, int):
                continue  # a requeued job repeating a step: the first value stands
            if decide and isinstance(rung, int) and self.pruner is not None:
                self._decide(self.pruner, job_num, watched, rung, step, value)
                ring(entry.get("bell"))

    def _decide(self, pruner: Pruner, job_num: int, watched: Watched, rung: int, step: float, value: float) -> None:
        decided = self.decisions.setdefault(watched.key, {})
        stop = self.stops.get(watched.key)
        if rung not in decided and stop is not None:  # a stopped trial stays stopped: no later rung is judged
            decided[rung] = False
        elif rung not in decided:
            assert self._journal is not None, "opened with the pruner"
            goes_on = pruner.decide(watched.key, rung, self.sign * value)
            decided[rung] = goes_on
            entry = {"trial": watched.key, "rung": rung, "step": plain_step(step), "value": value, "continue": goes_on}
            self._journal.write(json.dumps(entry, allow_nan=True) + "\n")
            self._journal.flush()
            if not goes_on:
                stop = self.stops[watched.key] = Stop(plain_step(step), value)
        if stop is not None:
            # before the decision file: a process of the job that reports after hearing "stop" finds the mark
            write_atomic(stop_path(watched.channel), json.dumps(stop._asdict(), allow_nan=True), durable=False)
            self.overdue.setdefault(job_num, time.monotonic() + PRUNED_GRACE_S)
        write_atomic(decision_path(watched.channel, rung), STOP if stop is not None else CONTINUE, durable=False)
