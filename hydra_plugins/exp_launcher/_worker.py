"""A worker process and its supervisor: jobs come over a socket, run with Hydra's run_job, JobReturns go back.

exp_local starts ``python -m hydra_plugins.exp_launcher._worker FD DRIVER_PID``
with the slot's CUDA_VISIBLE_DEVICES already in the environment (so CUDA never
sees other devices), in a session of its own. That process forks at once,
before any heavy import, and stays a tiny supervisor; the child is the worker.

Why two processes: a job blocked in C code holds the interpreter lock, so no
Python code in its own process can run, neither a signal handler nor a
watchdog thread, and a job may catch or ignore any signal but SIGKILL. The
supervisor runs no job code and sits in ``waitpid``, so its handler always
runs. It gets SIGTERM when the driver dies (PDEATHSIG) and the worker gets
SIGKILL when the supervisor dies. Both are child subreapers: whatever a job
starts, even in a new session, stays below them, where /proc finds it. So:

- the driver gone (even SIGKILLed), or the driver's SIGTERM (timeout, Ctrl-C):
  the supervisor stops and kills every process below it, then exits;
- a job ended: processes it left behind (a detached child, a pool it kept)
  are killed before its result goes back, as SLURM ends a job's processes;
- the worker ended on its own (crash, ``os._exit``, a signal): the supervisor
  kills what it left and exits with the worker's status or signal, so the
  driver's message names the real cause.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import logging
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any, Callable, Deque, Dict, List, Set, Union

from hydra_plugins.exp_launcher._messages import (
    Done,
    FromWorker,
    Hello,
    Ready,
    RunJob,
    Started,
    Stop,
    TakeBack,
    TakenBack,
    encode,
    receive,
    receive_payload,
    receive_setup,
    send,
)

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
ENDING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _prctl(option: int, value: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux
        pass


def _children(pid: int) -> List[int]:
    found: List[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as handle:
                found.extend(int(child) for child in handle.read().split())
        except OSError:
            pass
    return found


def _parents() -> Dict[int, List[int]]:
    """Every process's children, from each one's parent in /proc/*/stat (kernels without the children files)."""
    tree: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue
            parent = int(stat[stat.rindex(b")") + 2 :].split()[1])
            tree.setdefault(parent, []).append(int(entry))
    return tree


def descendants(root: int) -> List[int]:
    """Every process below ``root``."""
    if os.path.exists(f"/proc/{root}/task/{root}/children"):
        children: Callable[[int], List[int]] = _children
    else:
        tree = _parents()
        children = lambda pid: tree.get(pid, [])  # noqa: E731
    found: List[int] = []
    stack = [root]
    while stack:
        for child in children(stack.pop()):
            found.append(child)
            stack.append(child)
    return found


def _reap() -> bool:
    """Reap every ended child; whether any child is left."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def _send(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def end_descendants() -> int:
    """Kill every process below this one, until none is left; how many there were.

    Each round stops the whole tree first (a stopped process cannot fork), then kills it; as a subreaper
    this process inherits the orphans and reaps them. No child at all is one system call.
    """
    ended: Set[int] = set()
    while _reap():
        stopped: Set[int] = set()
        while True:
            new = [pid for pid in descendants(os.getpid()) if pid not in stopped]
            if not new:
                break
            for pid in new:
                _send(pid, signal.SIGSTOP)
            stopped.update(new)
        if not stopped:  # children that /proc does not show: nothing more can be done
            break
        for pid in stopped:
            _send(pid, signal.SIGKILL)
        ended |= stopped
        time.sleep(0.005)
    return len(ended)


def _end(signum: int, _frame: Any = None) -> None:
    end_descendants()
    os._exit(128 + signum)


def _mirror(status: int) -> None:
    """Exit as the worker did: its exit status, or its signal (without a core file of our own)."""
    if os.WIFSIGNALED(status):
        import resource

        number = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if number not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
        os._exit(128 + number)  # a signal whose default action does not end a process
    os._exit(os.waitstatus_to_exitcode(status))


def supervise(fd: int, driver: int) -> None:
    """Fork the worker; end its whole tree when told to or when the driver dies; exit as the worker exits."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    for number in ENDING:
        signal.signal(number, _end)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != driver:  # it died before prctl
        _end(signal.SIGTERM)
    supervisor = os.getpid()
    worker = os.fork()
    if worker == 0:
        for number in ENDING:
            signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != supervisor:
            os._exit(1)
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        serve(Connection(fd))
        return
    os.close(fd)  # the driver reads the end of the connection when the worker and all its children are gone
    _, status = os.waitpid(worker, 0)
    end_descendants()
    _mirror(status)


def _quoted(error: BaseException) -> str:
    return type(error).__name__ + (f"({', '.join(map(repr, error.args))})" if error.args else "")


def guarded(task_function: Any) -> Any:
    """The task function, with KeyboardInterrupt and SystemExit raised by a job turned into a failure of that job.

    Hydra's ``run_job`` catches ``Exception`` only: the others would end the worker, and the job would read
    as "the worker process died (killed by signal 2)". The worker stays for the next job.
    """

    @functools.wraps(task_function)
    def run(cfg: Any) -> Any:
        try:
            return task_function(cfg)
        except Exception:
            raise
        except BaseException as error:
            raise RuntimeError(f"the job raised {_quoted(error)}") from error

    return run


class ProcessState:
    """What a job may change in its process and the next job must not inherit: the working directory, the
    environment, ``sys.path`` and the signal handlers (modules stay imported: that is what a worker is for)."""

    def __init__(self) -> None:
        self.cwd = os.getcwd()
        self.environment = dict(os.environ)
        self.path = list(sys.path)
        self.handlers = {sig: signal.getsignal(sig) for sig in signal.valid_signals() if sig not in (signal.SIGKILL, signal.SIGSTOP)}

    def restore(self) -> None:
        os.chdir(self.cwd)
        for name in [name for name in os.environ if name not in self.environment]:
            del os.environ[name]
        for name, value in self.environment.items():
            if os.environ.get(name) != value:
                os.environ[name] = value
        sys.path[:] = self.path
        for sig, handler in self.handlers.items():
            if handler is not None and signal.getsignal(sig) is not handler:
                try:
                    signal.signal(sig, handler)
                except (OSError, ValueError):  # a signal this platform does not let Python handle
                    pass


class Inbox:
    """The driver's messages to a worker, read by a thread while a job runs.

    The driver hands a worker its next job before the current one ends, so that the worker goes on to it
    without a round trip; until that job starts, the driver may take it back for a worker that has gone
    idle (``TakeBack``, answered ``TakenBack`` if it had not started). Only this thread reads the connection;
    sends from both threads go one at a time.
    """

    def __init__(self, conn: Connection):
        self.conn = conn
        self.sending = threading.Lock()
        self.arrived = threading.Condition()
        self.messages: Deque[Union[RunJob, Stop]] = collections.deque()
        self.closed = False
        threading.Thread(target=self._read, daemon=True, name="exp-worker-inbox").start()

    def _read(self) -> None:
        try:
            while True:
                message = receive(self.conn)
                with self.arrived:
                    if isinstance(message, (RunJob, Stop)):
                        self.messages.append(message)
                        self.arrived.notify()
                    elif isinstance(message, TakeBack):
                        self._take_back(message.idx)
        except (EOFError, OSError):
            with self.arrived:
                self.closed = True
                self.arrived.notify()

    def _take_back(self, idx: int) -> None:
        waiting = [m for m in self.messages if isinstance(m, RunJob) and m.idx == idx]
        if waiting:  # not started: back to the driver (a started one answers Started)
            self.messages.remove(waiting[0])
            self.send(TakenBack(idx))

    def next(self) -> Union[RunJob, Stop]:
        """The next job, or Stop; EOFError once the driver is gone and nothing is left."""
        with self.arrived:
            while not self.messages and not self.closed:
                self.arrived.wait()
            if not self.messages:
                raise EOFError
            return self.messages.popleft()

    def send(self, message: FromWorker) -> None:
        self.send_bytes(encode(message))

    def send_bytes(self, payload: bytes) -> None:
        with self.sending:
            self.conn.send_bytes(payload)


def serve(conn: Connection) -> None:
    """Run jobs until told to stop; a connection the driver dropped ends the worker quietly."""
    try:
        _serve(conn)
    except (EOFError, ConnectionError):
        pass


def _serve(conn: Connection) -> None:
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobReturn, setup_globals

    from hydra_plugins.exp_launcher._compose import Composer
    from hydra_plugins.exp_launcher._jobs import failed_job_return, number, run_numbered
    from hydra_plugins.exp_launcher._main import prepare

    send(conn, Hello())  # the driver sends the payload only now: it never waits for a worker's imports
    sys.path[:], main = receive_setup(conn)
    if main is not None:  # before the payload, whose classes and functions from the script refer to it
        prepare(main)
    hydra_context, config, task_function, singleton_state = receive_payload(conn)
    task_function = guarded(task_function)
    setup_globals()
    Singleton.set_state(singleton_state)
    composer = Composer(hydra_context.config_loader, config)
    state = ProcessState()

    def failed(overrides: List[str], text: str) -> JobReturn:
        """A job that failed around its task (the worker stays): ``text``, on one line, is its error."""
        return failed_job_return(RuntimeError(" ".join(text.split())), overrides=list(overrides))

    send(conn, Ready())
    inbox = Inbox(conn)
    while True:
        message = inbox.next()
        if isinstance(message, Stop):
            return
        idx, overrides = message.idx, message.overrides
        state.restore()
        try:
            sweep_config = composer.compose(overrides)
        except Exception as error:  # an override that Hydra refuses for this config
            inbox.send(Done(idx, failed(overrides, f"Hydra cannot compose the job's config: {error}")))
            continue
        where = number(sweep_config, idx, f"{sweep_config.hydra.job.name}_{idx}")
        inbox.send(Started(idx, where))
        try:
            ret = run_numbered(hydra_context, task_function, sweep_config)
        except Exception as error:  # raised by Hydra's run_job around the task
            # (a job that deletes a variable of hydra.job.env_set makes Hydra's restore of the environment raise)
            ret = failed(overrides, f"Hydra failed around the job: {type(error).__name__}: {error}")
        left = end_descendants()
        if left:
            logging.getLogger("hydra_plugins.exp_launcher").warning(
                "exp_local: job #%d left %d processes running: killed (a job's processes end with it)", idx, left
            )
        try:
            payload = encode(Done(idx, ret))
        except Exception as error:  # a return value (or exception) that cannot travel back
            ret = failed_job_return(
                RuntimeError(f"the job's result cannot be sent back (pickling failed: {error})"),
                overrides=ret.overrides,
                cfg=ret.cfg,
                hydra_cfg=ret.hydra_cfg,
                working_dir=ret.working_dir,
                task_name=ret.task_name,
            )
            payload = encode(Done(idx, ret))
        inbox.send_bytes(payload)


if __name__ == "__main__":
    supervise(int(sys.argv[1]), int(sys.argv[2]))
