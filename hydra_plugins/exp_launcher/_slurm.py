"""The exp_slurm engine: every job a SLURM job submitted with submitit, every job a future.

submitit writes the sbatch script, pickles the job, runs it on the node and
requeues it on preemption or timeout (through the task's ``checkpoint``). What
submitit does not do is notice a job that ended *without* a result (``scancel``,
``os._exit``, the OOM killer, a node failure) unless ``sacct`` works, and it
does not on clusters without accounting: waiting for such a job hangs. So a
watcher thread resolves each job's future itself: with the result submitit
wrote, or, once ``squeue`` reports the job in a final state (or no longer
knows it) and no result has appeared, with a FAILED ``JobReturn`` that names
the state and the job's log files.

Each launch gets its own submitit folder, so a reused SLURM job id (a fresh
cluster restarts numbering) never returns another launch's result.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from omegaconf import DictConfig

from exp_compat.files.durable import json_lines
from exp_compat.plugin_options import typed_options
from hydra_plugins.exp_launcher._compose import Composer
from hydra_plugins.exp_launcher._devices import LauncherError, at_least
from hydra_plugins.exp_launcher._jobs import Job, collect, failed_return, number, run_numbered, status_word
from hydra_plugins.exp_launcher._main import dumps, main_script, prepare
from hydra_plugins.exp_launcher.config import ExpSlurmConf, SubmititQueueConf

log = logging.getLogger("hydra_plugins.exp_launcher")

# SLURM job states after which a job will not run again (a requeued job goes back to PENDING).
FINAL = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
    "SPECIAL_EXIT",
    "REVOKED",
}
# How long a result file may lag behind the job's end on a shared file system: a job that SLURM saw
# complete (or forgot) surely wrote one; one that failed or was cancelled wrote one only in a race.
RESULT_GRACE_S = {"COMPLETED": 10.0, "GONE": 10.0}
OTHER_GRACE_S = 3.0
REQUEUE_GRACE_S = 120.0  # a run that submitit is requeueing: SLURM may show it ended until KillWait has passed
# The options that exp_slurm reads itself; every other option is a submitit job parameter, so that a new field
# of ExpSlurmConf reaches submitit (which refuses a name it does not know) instead of being dropped.
NOT_JOB_PARAMETERS = ("_target_", "submitit_folder", "max_num_timeout", "cancel_at_exit", "poll_interval_s")


class SlurmTask:
    """What runs on the node: the job's config composed and run as Hydra's launchers run it.

    Checkpointable: on preemption or timeout submitit calls ``checkpoint`` and
    requeues the same call, which then runs from the start. The job first runs the app script as
    ``__main__`` (``_main.py``), then reads the sweep's state, whose classes and functions from the
    script refer to it: submitit's own pickle of this task holds that state as bytes.
    """

    def __init__(self, hydra_context: Any, task_function: Any, config: DictConfig):
        from hydra.core.singleton import Singleton

        self.main = main_script()
        self.payload = dumps((hydra_context, task_function, config, Singleton.get_state()), self.main)

    def __call__(self, overrides: List[str], idx: int) -> Any:
        import cloudpickle
        import submitit
        from hydra.core.singleton import Singleton
        from hydra.core.utils import setup_globals

        if self.main is not None:
            prepare(self.main)
        hydra_context, task_function, config, singleton_state = cloudpickle.loads(self.payload)
        setup_globals()
        Singleton.set_state(singleton_state)
        sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
        number(sweep_config, idx, submitit.JobEnvironment().job_id)
        return run_numbered(hydra_context, task_function, sweep_config)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Requeue the same call; first leave a mark that the driver reads while SLURM ends this run
        (the run can show as FAILED for seconds before the job is pending again)."""
        import submitit

        environment = submitit.JobEnvironment()
        try:
            requeue_mark(environment.paths.folder, environment.job_id).touch()
        except OSError:
            pass
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def requeue_mark(folder: Any, job_id: str) -> Path:
    return Path(folder, f"{job_id}_requeued")


def folder_root(folder: str) -> Path:
    """The folder that ``submitit_folder`` names, less a trailing ``%j``: every launch of a sweep lies in it."""
    path = Path(folder)
    return path.parent if "%j" in path.name else path


def launch_folder(folder: str) -> Path:
    """``submitit_folder`` with a subfolder of its own for this launch (before a trailing ``%j``)."""
    token = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    path = Path(folder)
    return folder_root(folder) / token / path.name if "%j" in path.name else folder_root(folder) / token


def submitit_parameters(options: ExpSlurmConf) -> Dict[str, Any]:
    """Our options as submitit's AutoExecutor parameters (SLURM-only ones prefixed ``slurm_``); unset ones
    (null, empty) are left to submitit's defaults."""
    common = {f.name for f in dataclasses.fields(SubmititQueueConf)}
    parameters = {}
    for option in dataclasses.fields(options):
        value = getattr(options, option.name)
        if option.name not in NOT_JOB_PARAMETERS and value not in (None, {}, []):
            parameters[option.name if option.name in common else f"slurm_{option.name}"] = value
    return parameters


def squeue_states(job_ids: Sequence[str]) -> Optional[Dict[str, str]]:
    """SLURM's state of each of these jobs that it still knows (array tasks one by one); None if squeue failed."""
    bases = sorted({job_id.split("_")[0] for job_id in job_ids})
    done = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(bases), "-o", "%i %T"], capture_output=True, text=True)
    if done.returncode != 0 and "Invalid job id" not in done.stderr:
        return None
    states = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            states[parts[0]] = parts[1]
    return states


OOM_SIGNS = ("exceeded memory limit", "oom-kill", "oom_kill", "out of memory")
OOM_HINT = " out of memory (it used more than it asked SLURM for: raise hydra.launcher.mem_gb)"


def out_of_memory(state: str, stderr: Path) -> str:
    """Why a job died, when SLURM killed it for its memory: the state says OUT_OF_MEMORY where the
    cgroup OOM killer did it, but only FAILED where slurmd's OverMemoryKill did, so read the log too."""
    if state == "OUT_OF_MEMORY":
        return OOM_HINT
    try:
        with open(stderr, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            tail = handle.read().decode("utf-8", "replace").lower()
    except OSError:
        return ""
    return OOM_HINT if any(sign in tail for sign in OOM_SIGNS) else ""


def error_line(error: BaseException) -> str:
    """What went wrong, in one line: the last line of the job's traceback that submitit's error wraps
    (``FailedJobError`` ends with the log paths instead), without the exception's module path."""
    text = str(error)
    trace = re.search(r"with trace:\n-+\n(.*?)\n-+\n", text, re.S)
    lines = [line.strip() for line in (trace.group(1) if trace else text).splitlines() if line.strip()]
    return re.sub(r"^(?:\w+\.)+(?=\w+: )", "", lines[-1]) if lines else type(error).__name__


class Tracked:
    """A submitted job: ours (index, overrides, future) and submitit's (id, paths, result)."""

    def __init__(self, job: Job, submitted: Any):
        self.job = job
        self.submitted = submitted
        self.state = "PENDING"
        self.ended_at: Optional[float] = None  # when squeue first showed it finished (or forgot it)

    @property
    def requeue_mark(self) -> Path:
        return requeue_mark(self.submitted.paths.folder, self.submitted.job_id)

    @property
    def logs(self) -> str:
        paths = self.submitted.paths
        return f"{paths.stdout}" if paths.stdout == paths.stderr else f"{paths.stderr} and {paths.stdout}"


class SlurmEngine:
    def __init__(self, options: Mapping[str, Any], *, hydra_context: Any, task_function: Any, config: DictConfig):
        try:
            import submitit
        except ImportError:
            raise LauncherError("hydra/launcher=exp_slurm needs submitit: pip install 'hydra-exp[slurm]'") from None
        if not shutil.which("sbatch"):
            raise LauncherError(
                "hydra/launcher=exp_slurm: no sbatch on this machine's PATH (run it where SLURM's commands are, a login node)"
            )

        try:
            self.options = o = typed_options(ExpSlurmConf, options, "hydra.launcher")
        except ValueError as error:
            raise LauncherError(str(error)) from None
        at_least("array_parallelism", o.array_parallelism, 1)
        at_least("max_num_timeout", o.max_num_timeout, 0)
        at_least("timeout_min", o.timeout_min, 1)
        if o.signal_delay_s >= 60 * o.timeout_min:
            raise LauncherError(
                f"hydra.launcher.signal_delay_s={o.signal_delay_s} must be less than timeout_min x 60 = "
                f"{60 * o.timeout_min} s: SLURM would send the timeout signal as soon as a job starts"
            )
        self.composer = Composer(hydra_context.config_loader, config)
        self.folder = launch_folder(o.submitit_folder)
        # Every SLURM job this sweep submits, so that its next run finds those that a killed driver left on the
        # cluster (``end_earlier_jobs``); named after the sweep directory, which has one sweep at a time, so
        # that sweeps sharing a submitit_folder never touch each other's jobs.
        sweep_dir = os.path.abspath(str(config.hydra.sweep.dir))
        digest = hashlib.sha1(sweep_dir.encode("utf-8")).hexdigest()[:12]
        self.jobs_file = folder_root(o.submitit_folder) / f"exp_slurm_jobs-{digest}.jsonl"
        self.executor = submitit.AutoExecutor(folder=self.folder, cluster="slurm", slurm_max_num_timeout=o.max_num_timeout)
        self.executor.update_parameters(**submitit_parameters(o))
        self.task = SlurmTask(hydra_context, task_function, config)
        self.tracked: Dict[str, Tracked] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # a job to watch, or closing
        self.closing = False
        self.watcher: Optional[threading.Thread] = None
        self.last_squeue = 0.0
        atexit.register(self._at_exit)

    @property
    def slots(self) -> int:
        return self.options.array_parallelism

    @property
    def ahead(self) -> int:
        """No job ahead: one submitted beyond the slots would only wait in SLURM's queue, where SLURM starts
        it when it schedules it, not when a slot frees."""
        return 0

    def start(self, max_jobs: Optional[int] = None) -> None:
        """Nothing to start ahead of the jobs: SLURM provides the slots."""

    # -- submitting -----------------------------------------------------------------------------
    def _job(self, overrides: Sequence[str], idx: int) -> Job:
        """Our record of a job, with its output directory (composed here, from the cached tree)."""
        from concurrent.futures import Future

        job = Job(idx, list(overrides), Future())
        config = self.composer.compose(job.overrides)
        job.where = number(config, idx, f"{config.hydra.job.name}_{idx}")
        job.future.set_running_or_notify_cancel()
        return job

    def _track(self, jobs: List[Job], submitted: List[Any]) -> None:
        self.jobs_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.jobs_file, "a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps({"job_id": sub.job_id, "job_num": job.idx}) + "\n" for job, sub in zip(jobs, submitted)))
        with self.lock:
            for job, sub in zip(jobs, submitted):
                self.tracked[sub.job_id] = Tracked(job, sub)
                log.info("exp_slurm: job #%d submitted as SLURM job %s", job.idx, sub.job_id)
            self.changed.notify()
            if self.watcher is None:
                self.watcher = threading.Thread(target=self._watch, daemon=True, name="exp-slurm-watcher")
                self.watcher.start()

    def submit(self, overrides: Sequence[str], job_idx: int) -> Any:
        if self.closing:
            raise RuntimeError("exp_slurm has been shut down")
        job = self._job(overrides, job_idx)
        self._track([job], [self.executor.submit(self.task, job.overrides, job.idx)])
        return job.future

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> List[Any]:
        """A batch as one SLURM job array (at most ``array_parallelism`` running at once)."""
        jobs = [self._job(overrides, initial_job_idx + i) for i, overrides in enumerate(job_overrides)]
        with self.executor.batch():
            submitted = [self.executor.submit(self.task, job.overrides, job.idx) for job in jobs]
        log.info("exp_slurm: %d jobs submitted as one job array (folder %s)", len(jobs), self.folder)
        self._track(jobs, submitted)
        return collect("exp_slurm", [job.future for job in jobs], self.shutdown)

    # -- watching -----------------------------------------------------------------------------
    def _resolve(self, tracked: Tracked, result: Any) -> None:
        with self.lock:
            self.tracked.pop(tracked.submitted.job_id, None)
        status = status_word(result)
        log.info("exp_slurm: job #%d %s (SLURM job %s)", tracked.job.idx, status, tracked.submitted.job_id)
        if not tracked.job.future.done():
            tracked.job.future.set_result(result)

    def _fail(self, tracked: Tracked, message: str) -> None:
        self._resolve(tracked, failed_return(tracked.job, RuntimeError(message)))

    def _collect_result(self, tracked: Tracked) -> None:
        sub = tracked.submitted
        try:
            self._resolve(tracked, sub.result())
        except Exception as error:  # the submitted call itself raised (composition, unpicklable result, no requeue...)
            self._fail(tracked, f"{error_line(error)} (SLURM job {sub.job_id}; log: {tracked.logs})")

    def _poll_states(self, pending: List[Tracked]) -> None:
        states = squeue_states([t.submitted.job_id for t in pending])
        if states is None:
            return  # squeue failed (controller busy): ask again later
        now = time.time()
        for tracked in pending:
            state = states.get(tracked.submitted.job_id, "GONE").split("+")[0]
            if state == "RUNNING" and tracked.state != "RUNNING":
                log.info("exp_slurm: job #%d running (SLURM job %s)", tracked.job.idx, tracked.submitted.job_id)
                tracked.requeue_mark.unlink(missing_ok=True)  # an earlier run's
            if state in FINAL or state == "GONE":
                tracked.ended_at = tracked.ended_at or now
            else:
                tracked.ended_at = None  # requeued
            tracked.state = state

    def _watch(self) -> None:
        while True:
            with self.lock:
                while not self.tracked and not self.closing:
                    self.changed.wait()  # idle between launches: no polling
                pending = list(self.tracked.values())
            if not pending:
                return
            for tracked in pending:
                if tracked.submitted.paths.result_pickle.exists():
                    self._collect_result(tracked)
            pending = [t for t in pending if not t.job.future.done()]
            if pending and time.time() - self.last_squeue >= self.options.poll_interval_s:
                self.last_squeue = time.time()
                self._poll_states(pending)
                for tracked in pending:
                    grace = REQUEUE_GRACE_S if tracked.requeue_mark.exists() else RESULT_GRACE_S.get(tracked.state, OTHER_GRACE_S)
                    if (
                        tracked.ended_at is not None
                        and time.time() - tracked.ended_at > grace
                        and not tracked.submitted.paths.result_pickle.exists()
                    ):
                        how = "is no longer known to SLURM" if tracked.state == "GONE" else f"ended ({tracked.state})"
                        how += out_of_memory(tracked.state, tracked.submitted.paths.stderr)
                        log.error(
                            "exp_slurm: job #%d: SLURM job %s %s without a result; log: %s",
                            tracked.job.idx,
                            tracked.submitted.job_id,
                            how,
                            tracked.logs,
                        )
                        self._fail(tracked, f"SLURM job {tracked.submitted.job_id} {how} without a result; log: {tracked.logs}")
            time.sleep(0.25)

    def _earlier_jobs(self) -> List[str]:
        try:
            entries = json_lines(self.jobs_file)
        except OSError:
            return []
        return [str(entry["job_id"]) for entry in entries if isinstance(entry, dict) and "job_id" in entry]

    def _active(self, ids: Sequence[str]) -> Optional[List[str]]:
        states = squeue_states(ids)
        return None if states is None else [i for i, state in states.items() if state.split("+")[0] not in FINAL]

    def end_earlier_jobs(self) -> None:
        """End the SLURM jobs that an earlier run of this sweep left on the cluster, before the sweep reads
        which jobs finished: its driver was killed (SIGKILL, a lost login node), so they run unwatched, and
        this run would launch them again. They are cancelled, or with ``cancel_at_exit=false`` awaited,
        until SLURM shows none of them running; what they finished is then read from their records."""
        ids = self._earlier_jobs()
        alive = self._active(ids) if ids else []
        if not alive:
            self.jobs_file.unlink(missing_ok=True)
            return
        if self.options.cancel_at_exit:
            log.warning(
                "exp_slurm: cancelling %d SLURM jobs that an earlier run of this sweep left running: %s", len(alive), " ".join(alive)
            )
            subprocess.run(["scancel", "--signal=KILL", *alive], capture_output=True)  # running: no grace period
            subprocess.run(["scancel", *alive], capture_output=True)  # pending
        else:
            log.warning(
                "exp_slurm: waiting for %d SLURM jobs that an earlier run of this sweep left running (cancel_at_exit=false): %s",
                len(alive),
                " ".join(alive),
            )
        while alive is None or alive:
            time.sleep(self.options.poll_interval_s)
            alive = self._active(alive or ids)
        self.jobs_file.unlink(missing_ok=True)  # all ended: their SLURM ids may be reused by other jobs

    # -- ending ---------------------------------------------------------------------------------
    def end(self, job_idx: int) -> None:
        """Cancel one job (scancel); its future fails here at once."""
        with self.lock:
            running = [t for t in self.tracked.values() if t.job.idx == job_idx]
        for tracked in running:
            subprocess.run(["scancel", tracked.submitted.job_id], capture_output=True)
            self._fail(tracked, f"ended by the sweep (SLURM job {tracked.submitted.job_id} cancelled)")

    def shutdown(self, cancel: bool = True) -> None:
        """Cancel the unfinished jobs (scancel), or wait for them; with ``cancel_at_exit=false``,
        cancelling leaves them running on the cluster instead (their futures fail here)."""
        with self.lock:
            self.closing = True
            self.changed.notify()
            pending = list(self.tracked.values())
        ids = [t.submitted.job_id for t in pending]
        if cancel and pending:
            if self.options.cancel_at_exit:
                subprocess.run(["scancel", *ids], capture_output=True)
                log.warning("exp_slurm: cancelled %d SLURM jobs: %s", len(ids), " ".join(ids))
                reason = "the sweep was interrupted: SLURM job cancelled"
            else:
                log.warning("exp_slurm: leaving %d SLURM jobs running (cancel_at_exit=false): %s", len(ids), " ".join(ids))
                reason = "the sweep was interrupted: SLURM job left running (cancel_at_exit=false)"
            for tracked in pending:
                self._fail(tracked, reason)
        elif pending:
            for tracked in pending:
                tracked.job.future.result()
        if self.watcher is not None:
            self.watcher.join(timeout=5)

    def _at_exit(self) -> None:
        with self.lock:
            unfinished = bool(self.tracked)
        if unfinished:
            self.shutdown(cancel=True)
