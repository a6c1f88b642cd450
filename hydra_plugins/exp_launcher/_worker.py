"""A worker process: receives jobs over a socket, runs them with Hydra's run_job, sends JobReturns back.

Started by exp_local as ``python -m hydra_plugins.exp_launcher._worker FD`` with
its CUDA_VISIBLE_DEVICES already in the environment, so CUDA never sees other
devices. It leads its own process group, so the launcher can kill a job's whole
process tree; and it ends that group if the launcher dies, so no orphan keeps a GPU.
"""
from __future__ import annotations

import ctypes
import os
import pickle
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

PR_SET_PDEATHSIG = 1


def _end_group(*_: Any) -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)


def watch_parent(parent: int) -> None:
    """End this worker's process group (job children included) when the launcher is gone."""
    signal.signal(signal.SIGTERM, _end_group)
    try:  # Linux: the kernel signals us when the parent dies...
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # ...unless it died before prctl
        _end_group()

    def poll() -> None:  # ...and in case the signal handler cannot run (a job blocked in C code holding the GIL)
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                _end_group()

    threading.Thread(target=poll, daemon=True, name="exp-parent-watch").start()


def serve(conn: Connection) -> None:
    import cloudpickle
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobReturn, JobStatus, setup_globals

    from hydra_plugins.exp_launcher._compose import Composer
    from hydra_plugins.exp_launcher._jobs import number, run_numbered

    parent, path = pickle.loads(conn.recv_bytes())
    watch_parent(parent)
    sys.path[:] = path
    hydra_context, config, task_function, singleton_state = cloudpickle.loads(conn.recv_bytes())
    setup_globals()
    Singleton.set_state(singleton_state)
    composer = Composer(hydra_context.config_loader, config)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] == "stop":
            return
        _, idx, overrides = message
        sweep_config = composer.compose(overrides)
        where = number(sweep_config, idx, f"{sweep_config.hydra.job.name}_{idx}")
        conn.send(("started", idx, where))
        ret = run_numbered(hydra_context, task_function, sweep_config)
        try:
            payload = cloudpickle.dumps(("done", idx, ret))
        except Exception as error:  # a return value (or exception) that cannot travel back
            ret = JobReturn(overrides=ret.overrides, cfg=ret.cfg, hydra_cfg=ret.hydra_cfg, working_dir=ret.working_dir,
                            task_name=ret.task_name, status=JobStatus.FAILED,
                            _return_value=RuntimeError(f"the job's result cannot be sent back (pickling failed: {error})"))
            payload = cloudpickle.dumps(("done", idx, ret))
        conn.send_bytes(payload)


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
