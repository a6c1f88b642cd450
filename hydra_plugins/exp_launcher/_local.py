"""The exp_local engine: one persistent worker process per slot, jobs as futures.

Each slot owns a worker process started with its devices in
CUDA_VISIBLE_DEVICES (and EXP_WORKER_ID, EXP_DEVICES) before the interpreter
starts, so job code can never see another slot's GPU, and the launcher itself
never touches CUDA. Workers compose each job's config themselves (in
parallel, not one after another in the parent) and stay alive across jobs, so
a job that imports torch pays for it once per worker, not once per job. Each
worker runs under a small supervisor process (see _worker.py) that ends its
whole process tree on request or when the driver dies, whatever the job does.

A dispatcher thread starts the workers (all at once: a worker says hello when
its imports are done and only then gets the sweep's payload), hands queued
jobs to idle workers and resolves each job's ``Future`` with its
``JobReturn``. A busy worker is handed one more queued job *ahead* (none that
a worker still starting will take), which it starts the moment its current job
ends, without a round trip to the driver (``ahead``: a sweep keeps that many
more jobs in flight); until it starts, the
dispatcher takes it back for a worker that has gone idle with nothing queued,
so a job never waits behind a long one while a slot is free. Workers are
started as jobs need them, never more than there are jobs. A job that raises
is a FAILED JobReturn (its traceback is in its log); a worker that dies
(segfault, ``os._exit``, the OOM killer) or a job past ``timeout_s`` (its whole
process tree is killed) fails only that job, and the slot gets a fresh worker.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from multiprocessing.connection import Connection, wait
from typing import Any, Deque, Dict, List, Mapping, Optional, Sequence, cast

from omegaconf import DictConfig

from exp_compat.plugin_options import typed_options
from hydra_plugins.exp_launcher._devices import LauncherError, Slot, at_least, device_slots
from hydra_plugins.exp_launcher._jobs import Job, collect, failed_return, status_word
from hydra_plugins.exp_launcher._main import MainScript, dumps, main_script
from hydra_plugins.exp_launcher._messages import (
    Done,
    Hello,
    Ready,
    RunJob,
    Started,
    Stop,
    TakeBack,
    TakenBack,
    ToWorker,
    receive,
    send,
    send_setup,
)
from hydra_plugins.exp_launcher.config import ExpLocalConf

log = logging.getLogger("hydra_plugins.exp_launcher")

WORKERS_PER_CPU = 8


class Worker:
    """One worker process (under its supervisor) and the driver's end of its socket."""

    def __init__(self, worker_id: int, devices: Optional[Slot], env: Dict[str, str]):
        self.worker_id = worker_id
        self.devices = devices
        ours, theirs = socket.socketpair()
        environment = dict(os.environ, **env, EXP_WORKER_ID=str(worker_id))
        if devices is not None:
            environment["CUDA_VISIBLE_DEVICES"] = environment["EXP_DEVICES"] = ",".join(devices)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hydra_plugins.exp_launcher._worker", str(theirs.fileno()), str(os.getpid())],
                pass_fds=[theirs.fileno()],
                env=environment,
                start_new_session=True,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.ready = False
        self.job: Optional[Job] = None  # running, or handed ahead and now the next to run
        self.ahead: Optional[Job] = None  # handed ahead: runs when the current job ends, unless taken back
        self.taking_back: Optional[int] = None  # the job handed ahead that the driver asked back
        self.jobs_done = 0

    @property
    def where(self) -> str:
        return f"worker {self.worker_id}" + (f" (CUDA_VISIBLE_DEVICES={','.join(self.devices)})" if self.devices else "")

    @property
    def how_it_ended(self) -> str:
        code = self.process.returncode
        return f"killed by signal {-code} ({signal.Signals(-code).name})" if code < 0 else f"exit status {code}"

    def terminate(self) -> None:
        """Ask the supervisor to kill the worker and every process below it, at once."""
        if self.process.poll() is None:
            self.process.terminate()

    def ask_to_stop(self) -> None:
        """Let an idle worker end on its own (its job code's exit handlers run)."""
        try:
            send(self.conn, Stop())
        except OSError:
            self.terminate()

    def finish(self, grace_s: float = 5.0) -> None:
        """Wait for the worker's end: one that does not stop is terminated; a supervisor that cannot end its
        tree in time (a process stuck in the kernel) has its process group SIGKILLed."""
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.terminate()
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.conn.close()

    def kill(self) -> None:
        self.terminate()
        self.finish()

    def stop(self) -> None:
        self.ask_to_stop()
        self.finish()


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def thread_limits(threads: Optional[int], workers: int) -> Dict[str, str]:
    """Thread-pool sizes for the workers' numerical libraries, where the environment sets none.

    Every OpenMP/BLAS pool sizes itself to the whole machine, so N workers would run N times as many
    threads as cores; with OpenMP's busy-waiting that made a scikit-learn job measured here over 100
    times slower. null: the CPUs shared out between the workers (as joblib's loky does); 0: leave them.
    """
    if threads == 0:
        return {}
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // workers)
    elif threads < 0:
        raise LauncherError(f"hydra.launcher.threads_per_worker must be null, 0 or a whole number >= 1, got {threads!r}")
    return {name: str(threads) for name in THREAD_VARIABLES if name not in os.environ}


def worker_count(workers: Optional[int], slots: Optional[List[Slot]]) -> int:
    """How many workers: one per device slot, or per CPU, unless told; never far beyond the CPUs.

    Each worker is a Python process with Hydra loaded; far more of them than CPUs only adds start-up and
    memory, so without GPUs the count is capped at WORKERS_PER_CPU times the CPUs (jobs that mostly wait,
    on I/O or a remote service, may still overlap several per CPU).
    """
    cpus = os.cpu_count() or 1
    if workers is None:
        return len(slots) if slots is not None else cpus
    at_least("workers", workers, 1)
    if slots is not None:
        if workers > len(slots):
            raise LauncherError(
                f"hydra.launcher.workers={workers}, but there are {len(slots)} device slots "
                "(raise jobs_per_gpu to run several jobs on one device)"
            )
        return workers
    cap = WORKERS_PER_CPU * cpus
    if workers > cap:
        log.warning(
            "exp_local: hydra.launcher.workers=%d is far above this machine's %d CPUs: using %d (%d per CPU)",
            workers,
            cpus,
            cap,
            WORKERS_PER_CPU,
        )
        return cap
    return workers


class LocalEngine:
    def __init__(self, options: Mapping[str, Any], *, hydra_context: Any, task_function: Any, config: DictConfig):
        try:
            self.options = o = typed_options(ExpLocalConf, options, "hydra.launcher")
        except ValueError as error:
            raise LauncherError(str(error)) from None
        self.hydra_context = hydra_context
        self.task_function = task_function
        self.config = config
        slots = device_slots(o.gpus, o.jobs_per_gpu, o.gpus_per_job, o.skip_busy)
        workers = worker_count(o.workers, slots)
        for key, value in (("timeout_s", o.timeout_s), ("max_jobs_per_worker", o.max_jobs_per_worker)):
            if value is not None and value <= 0:
                raise LauncherError(f"hydra.launcher.{key} must be a positive number or null, got {value!r}")
        self.slot_devices: List[Optional[Slot]] = [slots[i] if slots is not None else None for i in range(workers)]
        self.env = {**thread_limits(o.threads_per_worker, workers), **o.env}
        self.workers: List[Optional[Worker]] = [None] * workers  # only the dispatcher thread changes this list
        self.wanted = 0  # workers to keep running whether or not jobs are queued (start's max_jobs)
        self.queue: Deque[Job] = collections.deque()
        self.lock = threading.Lock()
        self.wake_r, self.wake_w = socket.socketpair()
        self.dispatcher: Optional[threading.Thread] = None
        self.draining = False  # shutdown(cancel=False): no new jobs, the running ones finish
        self.closing = False
        self.broken: Optional[str] = None  # why workers cannot be started
        self.ending: set[int] = set()  # jobs to end now (end()), by the dispatcher
        self.payload = b""
        self.main: Optional[MainScript] = None  # the app script each worker runs as __main__, if it can

    @property
    def slots(self) -> int:
        return len(self.slot_devices)

    @property
    def ahead(self) -> int:
        """One job per worker can wait in the worker itself, to start without a round trip."""
        return len(self.slot_devices)

    # -- the asynchronous interface -------------------------------------------------------
    def _run_dispatcher(self) -> None:
        """Start the dispatcher thread (with the lock held). It starts and ends every worker itself: a worker's
        supervisor is told when the thread that started it ends (PDEATHSIG), and this thread lives until
        the workers are gone."""
        if self.dispatcher is not None or self.closing:
            return
        from hydra.core.singleton import Singleton

        self.main = main_script()
        self.payload = dumps((self.hydra_context, self.config, self.task_function, Singleton.get_state()), self.main)
        self.dispatcher = threading.Thread(target=self._dispatch, daemon=True, name="exp-local-dispatcher")
        self.dispatcher.start()
        atexit.register(self.shutdown)

    def end_earlier_jobs(self) -> None:
        """Nothing to end: an earlier run's workers and jobs died with their driver (the supervisor)."""

    def start(self, max_jobs: Optional[int] = None) -> None:
        """Start the workers before the first job: all slots, or as many as ``max_jobs`` (the sweep's size)."""
        with self.lock:
            self.wanted = max(self.wanted, self.slots if max_jobs is None else min(self.slots, max_jobs))
            self._run_dispatcher()
        self._wake()

    def submit(self, overrides: Sequence[str], job_idx: int) -> "Future[Any]":
        """Queue a job; a worker is started for it when none is free (up to the slots)."""
        with self.lock:
            if self.closing or self.draining:
                raise RuntimeError("exp_local has been shut down")
            self._run_dispatcher()
            job = Job(job_idx, list(overrides), Future())
            self.queue.append(job)
        self._wake()
        return job.future

    def end(self, job_idx: int) -> None:
        """End a running job now: its worker's process tree is killed, and the slot gets a fresh worker."""
        with self.lock:
            self.ending.add(job_idx)
        self._wake()

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> List[Any]:
        from hydra.core.utils import filter_overrides

        self.start(max_jobs=len(job_overrides))
        log.info("exp_local: launching %d jobs on %d workers", len(job_overrides), min(self.slots, len(job_overrides)))
        futures = []
        for offset, overrides in enumerate(job_overrides):
            log.info("\t#%d : %s", initial_job_idx + offset, " ".join(filter_overrides(overrides)))
            futures.append(self.submit(overrides, initial_job_idx + offset))
        return collect("exp_local", futures, self.shutdown)

    def shutdown(self, cancel: bool = True) -> None:
        """Stop the workers: kill running jobs (cancel) or let them finish first."""
        with self.lock:
            if self.closing or self.draining:
                return
            if self.dispatcher is None:
                self.closing = True
                return
            self.draining = True
            queued = list(self.queue) if cancel else []
            if cancel:
                self.queue.clear()
        for job in queued:
            if not job.future.cancel():  # taken back after its worker had gone on to it: it already runs
                job.future.set_result(failed_return(job, KeyboardInterrupt("the sweep was interrupted")))
        while not cancel and self.dispatcher.is_alive() and (self.queue or any(w and (w.job or w.ahead) for w in self.workers)):
            time.sleep(0.05)
        self.closing = True
        self._wake()
        if threading.current_thread() is not self.dispatcher:  # a future's callback may run on the dispatcher
            self.dispatcher.join()

    # -- the dispatcher thread -----------------------------------------------------------
    def _wake(self) -> None:
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    def _fail(self, worker: Worker, error: BaseException) -> None:
        """The worker's job fails with ``error``; a job handed ahead that it never started goes back to the queue."""
        job, worker.job = worker.job, None
        if job is not None and not job.future.done():
            job.future.set_result(failed_return(job, error))
        self._requeue(worker)

    def _requeue(self, worker: Worker) -> None:
        """The job handed ahead to ``worker``, which never started, back to the front of the queue."""
        job, worker.ahead = worker.ahead, None
        if job is not None and not job.future.cancelled():
            job.started = None
            with self.lock:
                self.queue.appendleft(job)

    def _fill(self) -> None:
        """Start workers up to what is wanted: start's count, or one per queued or running job."""
        if self.broken is not None:
            return
        with self.lock:
            busy = sum(1 for w in self.workers if w is not None and w.job is not None)
            target = max(self.wanted, min(self.slots, len(self.queue) + busy))
        missing = target - sum(w is not None for w in self.workers)
        started = []
        for slot, worker in enumerate(self.workers):
            if missing <= 0:
                break
            if worker is None:
                try:
                    worker = self._new_worker(slot)
                except OSError as error:  # out of processes or memory
                    self.broken = f"{type(error).__name__}: {error}"
                    log.error("exp_local: worker %d could not be started (%s)", slot, self.broken)
                    break
                self.workers[slot] = worker
                started.append(worker)
                missing -= 1
        if started:
            log.info(
                "exp_local: starting %d worker%s: %s", len(started), "s" if len(started) > 1 else "", ", ".join(w.where for w in started)
            )

    def _new_worker(self, slot: int) -> Worker:
        return Worker(slot, self.slot_devices[slot], self.env)

    def _fail_stranded(self) -> None:
        """With no worker left and none to start, queued jobs fail instead of waiting forever."""
        if self.broken is None or any(w is not None for w in self.workers):
            return
        with self.lock:
            stranded = list(self.queue)
            self.queue.clear()
        for job in stranded:
            if self._run(job):
                job.future.set_result(failed_return(job, RuntimeError(f"no exp_local worker could start ({self.broken})")))

    def _assign(self) -> None:
        """Queued jobs to idle workers, then one ahead to each busy worker that will run another. A job
        handed ahead stays pending (cancellable) until its worker goes on to it; it is taken back when it
        was cancelled, or for an idle worker when nothing else is queued."""
        limit = self.options.max_jobs_per_worker
        with self.lock:
            ready = [w for w in self.workers if w is not None and w.ready]
            for worker in ready:
                if worker.job is None:
                    job = self._next_queued(claim=True)
                    if job is None:
                        break
                    worker.job, job.started = job, time.monotonic()
                    self._hand(worker, job)
            # the queued jobs that workers still starting will take are not handed ahead: taking one back needs
            # the busy worker's Python, which a job in C code holding the interpreter lock stops for its whole run
            starting = sum(1 for w in self.workers if w is not None and not w.ready)
            for worker in ready:
                if len(self.queue) <= starting:
                    break
                if worker.job is not None and worker.ahead is None and (limit is None or worker.jobs_done + 1 < limit):
                    job = self._next_queued(claim=False)
                    if job is None:
                        break
                    worker.ahead = job
                    job.future.add_done_callback(lambda future: self._wake() if future.cancelled() else None)
                    self._hand(worker, job)
                    log.debug("exp_local: job #%d handed ahead to %s", job.idx, worker.where)  # hydra.verbose shows it
            idle = sum(1 for w in ready if w.job is None)
            for worker in ready:
                if worker.ahead is None or worker.taking_back == worker.ahead.idx:
                    continue
                if worker.ahead.future.cancelled() or idle > 0:
                    idle -= not worker.ahead.future.cancelled()
                    worker.taking_back = worker.ahead.idx
                    self._send(worker, TakeBack(worker.ahead.idx))

    def _next_queued(self, claim: bool) -> Optional[Job]:
        """The first queued job not cancelled, its future set running (``claim``) or left pending."""
        while self.queue:
            job = self.queue.popleft()
            if self._run(job) if claim else not job.future.cancelled():
                return job
        return None

    @staticmethod
    def _run(job: Job) -> bool:
        """Set the job's future running, unless it already runs (a job taken back after its worker had gone
        on to it); False if it was cancelled."""
        return job.future.running() or job.future.set_running_or_notify_cancel()

    def _hand(self, worker: Worker, job: Job) -> None:
        self._send(worker, RunJob(job.idx, job.overrides))

    @staticmethod
    def _send(worker: Worker, message: ToWorker) -> None:
        try:
            send(worker.conn, message)
        except OSError:  # it just died: reading its end fails its job with the cause
            pass

    def _next_deadline(self) -> Optional[float]:
        limit = self.options.timeout_s
        if limit is None:
            return None
        starts = [w.job.started for w in self.workers if w and w.job and w.job.started is not None]
        return max(0.0, min(starts) + limit - time.monotonic()) if starts else None

    def _dispatch(self) -> None:
        try:
            while not self.closing:
                self._fill()
                self._fail_stranded()
                self._assign()
                conns = {w.conn: slot for slot, w in enumerate(self.workers) if w is not None}
                for ready in wait([*conns, self.wake_r], timeout=self._next_deadline()):
                    if ready is self.wake_r:
                        self.wake_r.recv(4096)
                        continue
                    self._receive(conns[cast(Connection, ready)])  # wait() returns what it was given
                self._enforce_timeout()
                self._end_asked()
        except BaseException as error:  # a bug here must not leave futures unresolved or workers running
            log.exception("exp_local: the dispatcher failed")
            self.broken = f"the dispatcher failed: {type(error).__name__}: {error}"
        finally:
            self._end_workers()
            self._fail_stranded()

    def _end_workers(self) -> None:
        """End every worker at once: idle ones stop on their own, busy or starting ones are terminated."""
        workers = [w for w in self.workers if w is not None]
        self.workers = [None] * self.slots
        for worker in workers:
            if worker.ready and worker.job is None:
                worker.ask_to_stop()
            else:
                worker.terminate()
        for worker in workers:
            worker.finish()
            if worker.ahead is not None:  # never started
                worker.ahead.future.cancel()
            self._fail(worker, KeyboardInterrupt("the sweep was interrupted"))

    def _receive(self, slot: int) -> None:
        worker = self.workers[slot]
        assert worker is not None
        try:
            message = receive(worker.conn)
        except (EOFError, OSError):
            worker.finish()
            self.workers[slot] = None
            how = worker.how_it_ended
            if not worker.ready:  # it failed in its own start-up (its error is above): do not start it over and over
                self.broken = f"worker {worker.worker_id} ended before it was ready, {how}"
                log.error("exp_local: %s", self.broken)
                return
            if worker.job is not None:
                log.error("exp_local: job #%d: %s died (%s)", worker.job.idx, worker.where, how)
            self._fail(worker, RuntimeError(f"the worker process died ({how})"))
            return
        match message:
            case Hello():
                try:
                    send_setup(worker.conn, list(sys.path), self.main, self.payload)
                except OSError:  # it just died: reading its end says how
                    pass
            case Ready():
                worker.ready = True
            case Started(idx, where) if worker.job is not None:
                worker.job.where = where
                log.info("exp_local: job #%d started on %s", idx, worker.where)
            case TakenBack(idx):  # the job handed ahead, which had not started
                if worker.job is not None and worker.job.idx == idx:  # its previous job's end came first
                    taken = worker.job
                    self._go_on(worker)  # to a job handed ahead since, which the worker now runs instead
                    worker.ahead = taken
                self._requeue(worker)
            case Done(_, job_return) if worker.job is not None:
                self._done(slot, worker, worker.job, job_return)

    def _done(self, slot: int, worker: Worker, job: Job, job_return: Any) -> None:
        """The worker's job ended: its future gets the JobReturn; the worker goes on, or stops at its limit."""
        worker.job = None
        worker.jobs_done += 1
        status = status_word(job_return)
        log.info("exp_local: job #%d %s on %s in %.2fs", job.idx, status, worker.where, time.monotonic() - (job.started or 0))
        if not job.future.cancelled():  # one handed ahead, cancelled as the worker went on to it
            job.future.set_result(job_return)
        limit = self.options.max_jobs_per_worker
        if limit is not None and worker.jobs_done >= limit:
            self._requeue(worker)
            worker.stop()
            self.workers[slot] = None
        else:
            self._go_on(worker)

    def _go_on(self, worker: Worker) -> None:
        """The worker goes on by itself to the job handed ahead, if any, as its current job ends."""
        job, worker.ahead = worker.ahead, None
        worker.job = job
        if job is not None:
            job.started = time.monotonic()
            self._run(job)  # False: cancelled just now; it runs unrecorded

    def _enforce_timeout(self) -> None:
        limit = self.options.timeout_s
        if limit is None:
            return
        now = time.monotonic()
        for slot, worker in enumerate(self.workers):
            if worker and worker.job and worker.job.started is not None and now - worker.job.started > limit:
                log.error("exp_local: job #%d ran longer than timeout_s=%s on %s: killed", worker.job.idx, limit, worker.where)
                self._kill(slot, worker, TimeoutError(f"the job ran longer than hydra.launcher.timeout_s={limit}"))

    def _end_asked(self) -> None:
        """End the running jobs that ``end`` asked for (a job that already ended is left alone)."""
        with self.lock:
            asked, self.ending = self.ending, set()
        for slot, worker in enumerate(self.workers):
            if worker and worker.job and worker.job.started is not None and worker.job.idx in asked:
                log.info("exp_local: job #%d ended by the sweep on %s", worker.job.idx, worker.where)
                self._kill(slot, worker, RuntimeError("ended by the sweep"))

    def _kill(self, slot: int, worker: Worker, error: BaseException) -> None:
        """Kill the worker's process tree, fail its job with ``error``; the slot gets a fresh worker."""
        worker.kill()
        self._fail(worker, error)
        self.workers[slot] = None
