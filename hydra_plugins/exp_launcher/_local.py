"""The exp_local engine: one persistent worker process per slot, jobs as futures.

Each slot owns a worker process started with its devices in
CUDA_VISIBLE_DEVICES (and EXP_WORKER_ID, EXP_DEVICES) before the interpreter
starts, so job code can never see another slot's GPU, and the launcher itself
never touches CUDA. Workers compose each job's config themselves (in
parallel, not one after another in the parent) and stay alive across jobs, so
a job that imports torch pays for it once per worker, not once per job.

A dispatcher thread hands queued jobs to idle workers and resolves each job's
``Future`` with its ``JobReturn``. A job that raises is a FAILED JobReturn (its
traceback is in its log); a worker that dies (segfault, ``os._exit``, the OOM
killer) or a job past ``timeout_s`` (its whole process tree is killed) fails
only that job, and the slot gets a fresh worker.
"""
from __future__ import annotations

import atexit
import collections
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from multiprocessing.connection import Connection, wait
from typing import Any, Deque, Dict, List, Optional, Sequence

from omegaconf import DictConfig

from exp_compat.hydra_syntax import plain_options
from hydra_plugins.exp_launcher._devices import LauncherError, Slot, device_slots
from hydra_plugins.exp_launcher._jobs import Job, collect, failed_return

log = logging.getLogger("hydra_plugins.exp_launcher")


class Worker:
    """One worker process and its end of the socket."""

    def __init__(self, worker_id: int, devices: Optional[Slot], env: Dict[str, str], payload: bytes):
        self.worker_id = worker_id
        self.devices = devices
        ours, theirs = socket.socketpair()
        environment = dict(os.environ, **env, EXP_WORKER_ID=str(worker_id))
        if devices is not None:
            environment["CUDA_VISIBLE_DEVICES"] = environment["EXP_DEVICES"] = ",".join(devices)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hydra_plugins.exp_launcher._worker", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], env=environment, start_new_session=True,
        )
        theirs.close()
        self.conn = Connection(ours.detach())
        self.conn.send_bytes(pickle.dumps((os.getpid(), list(sys.path))))
        self.conn.send_bytes(payload)
        self.ready = False
        self.job: Optional[Job] = None
        self.jobs_done = 0

    @property
    def where(self) -> str:
        return f"worker {self.worker_id}" + (f" (CUDA_VISIBLE_DEVICES={','.join(self.devices)})" if self.devices else "")

    def kill(self) -> None:
        """Kill the worker and every process its job started (its process group)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.conn.close()

    def stop(self, grace_s: float = 5.0) -> None:
        try:
            self.conn.send(("stop",))
            self.process.wait(timeout=grace_s)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS")


def thread_limits(threads: Any, workers: int) -> Dict[str, str]:
    """Thread-pool sizes for the workers' numerical libraries, where the environment sets none.

    Every OpenMP/BLAS pool sizes itself to the whole machine, so N workers would run N times as many
    threads as cores; with OpenMP's busy-waiting that made a scikit-learn job measured here over 100
    times slower. null: the CPUs shared out between the workers (as joblib's loky does); 0: leave them.
    """
    if threads == 0:
        return {}
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // workers)
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise LauncherError(f"hydra.launcher.threads_per_worker must be null, 0 or a whole number >= 1, got {threads!r}")
    return {name: str(threads) for name in THREAD_VARIABLES if name not in os.environ}


class LocalEngine:
    def __init__(self, options: Dict[str, Any], *, hydra_context: Any, task_function: Any, config: DictConfig):
        self.options = plain_options(options)
        self.hydra_context = hydra_context
        self.task_function = task_function
        self.config = config
        o = self.options
        slots = device_slots(o["gpus"], o["jobs_per_gpu"], o["gpus_per_job"], o.get("skip_busy"))
        workers = o["workers"]
        if workers is None:
            workers = len(slots) if slots is not None else (os.cpu_count() or 1)
        elif isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise LauncherError(f"hydra.launcher.workers must be a whole number >= 1, got {workers!r}")
        if slots is not None and workers > len(slots):
            raise LauncherError(f"hydra.launcher.workers={workers}, but there are {len(slots)} device slots "
                                "(raise jobs_per_gpu to run several jobs on one device)")
        for key in ("timeout_s", "max_jobs_per_worker"):
            value = o[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise LauncherError(f"hydra.launcher.{key} must be a positive number or null, got {value!r}")
        self.slot_devices: List[Optional[Slot]] = [slots[i] if slots is not None else None for i in range(workers)]
        self.env = {**thread_limits(o.get("threads_per_worker"), workers), **{str(k): str(v) for k, v in (o["env"] or {}).items()}}
        self.workers: List[Optional[Worker]] = []
        self.queue: Deque[Job] = collections.deque()
        self.lock = threading.Lock()
        self.wake_r, self.wake_w = socket.socketpair()
        self.dispatcher: Optional[threading.Thread] = None
        self.closing = False
        self.payload = b""

    @property
    def slots(self) -> int:
        return len(self.slot_devices)

    # -- starting -----------------------------------------------------------------------------
    def _start(self) -> None:
        import cloudpickle
        from hydra.core.singleton import Singleton

        self.payload = cloudpickle.dumps((self.hydra_context, self.config, self.task_function, Singleton.get_state()))
        self.workers = [self._new_worker(i) for i in range(self.slots)]
        self.dispatcher = threading.Thread(target=self._dispatch, daemon=True, name="exp-local-dispatcher")
        self.dispatcher.start()
        atexit.register(self.shutdown)
        where = ", ".join(w.where for w in self.workers if w)
        log.info("exp_local: %d workers started: %s", self.slots, where)

    def _new_worker(self, slot: int) -> Worker:
        return Worker(slot, self.slot_devices[slot], self.env, self.payload)

    # -- the asynchronous interface -------------------------------------------------------
    def start(self) -> None:
        with self.lock:
            if self.dispatcher is None and not self.closing:
                self._start()

    def submit(self, overrides: Sequence[str], job_idx: int) -> "Future[Any]":
        self.start()
        with self.lock:
            if self.closing:
                raise RuntimeError("exp_local has been shut down")
            job = Job(job_idx, list(overrides), Future())
            self.queue.append(job)
        self._wake()
        return job.future

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> List[Any]:
        from hydra.core.utils import filter_overrides

        log.info("exp_local: launching %d jobs on %d workers", len(job_overrides), self.slots)
        futures = []
        for offset, overrides in enumerate(job_overrides):
            log.info("\t#%d : %s", initial_job_idx + offset, " ".join(filter_overrides(overrides)))
            futures.append(self.submit(overrides, initial_job_idx + offset))
        return collect("exp_local", futures, self.shutdown)

    def shutdown(self, cancel: bool = True) -> None:
        """Stop the workers: kill running jobs (cancel) or let them finish first."""
        with self.lock:
            if self.closing or self.dispatcher is None:
                self.closing = True
                return
            self.closing = True
            queued = list(self.queue) if cancel else []
            if cancel:
                self.queue.clear()
        for job in queued:
            job.future.cancel()
        if not cancel:
            while any(w and w.job for w in self.workers) or self.queue:
                time.sleep(0.05)
        self._wake()
        self.dispatcher.join(timeout=10)
        for worker in self.workers:
            if worker is None:
                continue
            if worker.job is not None:
                worker.kill()
                self._fail(worker, KeyboardInterrupt("the sweep was interrupted"))
            else:
                worker.stop()
        self.workers = []

    # -- the dispatcher thread -----------------------------------------------------------
    def _wake(self) -> None:
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    def _fail(self, worker: Worker, error: BaseException) -> None:
        job, worker.job = worker.job, None
        if job is not None and not job.future.done():
            job.future.set_result(failed_return(job, error))

    def _replace(self, slot: int) -> None:
        if not self.closing:
            self.workers[slot] = self._new_worker(slot)

    def _assign(self) -> None:
        with self.lock:
            for worker in self.workers:
                if worker is None or not worker.ready or worker.job is not None:
                    continue
                while self.queue:
                    job = self.queue.popleft()
                    if job.future.set_running_or_notify_cancel():
                        worker.job, job.started = job, time.monotonic()
                        worker.conn.send(("job", job.idx, job.overrides))
                        break

    def _next_deadline(self) -> Optional[float]:
        limit = self.options["timeout_s"]
        if limit is None:
            return None
        starts = [w.job.started for w in self.workers if w and w.job and w.job.started is not None]
        return max(0.0, min(starts) + limit - time.monotonic()) if starts else None

    def _dispatch(self) -> None:
        while not self.closing:
            self._assign()
            conns = {w.conn: slot for slot, w in enumerate(self.workers) if w is not None}
            for ready in wait([*conns, self.wake_r], timeout=self._next_deadline()):
                if ready is self.wake_r:
                    self.wake_r.recv(4096)
                    continue
                self._receive(conns[ready])
            self._enforce_timeout()

    def _receive(self, slot: int) -> None:
        worker = self.workers[slot]
        assert worker is not None
        try:
            message = pickle.loads(worker.conn.recv_bytes())
        except (EOFError, OSError):
            code = worker.process.wait()
            how = f"killed by signal {-code} ({signal.Signals(-code).name})" if code < 0 else f"exit status {code}"
            if worker.job is not None:
                log.error("exp_local: job #%d: %s died (%s)", worker.job.idx, worker.where, how)
            worker.kill()
            self._fail(worker, RuntimeError(f"the worker process died ({how})"))
            self._replace(slot)
            return
        kind = message[0]
        if kind == "ready":
            worker.ready = True
        elif kind == "started" and worker.job is not None:
            worker.job.where = message[2]
            log.info("exp_local: job #%d started on %s", message[1], worker.where)
        elif kind == "done" and worker.job is not None:
            job, worker.job = worker.job, None
            worker.jobs_done += 1
            status = message[2].status.name.lower()
            log.info("exp_local: job #%d %s on %s in %.2fs", job.idx, status, worker.where, time.monotonic() - (job.started or 0))
            job.future.set_result(message[2])
            limit = self.options["max_jobs_per_worker"]
            if limit is not None and worker.jobs_done >= limit:
                worker.stop()
                self._replace(slot)

    def _enforce_timeout(self) -> None:
        limit = self.options["timeout_s"]
        if limit is None:
            return
        now = time.monotonic()
        for slot, worker in enumerate(self.workers):
            if worker and worker.job and worker.job.started is not None and now - worker.job.started > limit:
                log.error("exp_local: job #%d ran longer than timeout_s=%s on %s: killed", worker.job.idx, limit, worker.where)
                worker.kill()
                self._fail(worker, TimeoutError(f"the job ran longer than hydra.launcher.timeout_s={limit}"))
                self._replace(slot)
