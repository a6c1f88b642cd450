"""EXP runnables as Hydra apps: one decorator on ``run(x=1, **kwargs)``.

EXP called a module's ``run`` with each configuration as keyword arguments,
plus ``id`` (the configuration's number), ``run`` (the repetition) and ``pid``
(the worker). ``@runnable`` keeps that contract under Hydra: each job's config
arrives as keyword arguments, nested keys as nested dicts (``model.lr`` is
``model={"lr": ...}``, as Hydra composes it), with ``id`` and ``run`` from the
exp sweepers (which pass them in ``hydra.job.env_set``, never in the app's
config; the job number and 1 under other sweepers) and ``pid`` from the exp
launchers' worker id (0 elsewhere). The sweep's own ``exp`` key
(``+exp.params=FILE``) is not passed. The return value is the job's result.

Calling the decorated function with arguments calls the plain function, so
code and tests that call ``run(x=2)`` directly keep working; calling it with
none starts Hydra, as ``if __name__ == "__main__": run()`` does.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, cast

CONTROL_KEYS = ("exp",)  # the sweep's own settings, not the job's parameters


def job_kwargs(cfg: Any) -> Dict[str, Any]:
    """The keyword arguments an EXP runnable receives for one job's config."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, OmegaConf

    kwargs = cast(Dict[str, Any], OmegaConf.to_container(cfg, resolve=True))  # a job's config is a DictConfig
    for key in CONTROL_KEYS:
        kwargs.pop(key, None)
    from exp_compat.overrides import JOB_ENV

    # HydraConfig.get() is a DictConfig, typed as the schema it follows (which has no .get)
    job = cast(DictConfig, HydraConfig.get().job) if HydraConfig.initialized() else None
    env = job.env_set if job is not None else {}
    number = job.num if job is not None and job.get("num") is not None else 0
    kwargs.setdefault("id", int(env.get(JOB_ENV["id"], number)))
    kwargs.setdefault("run", int(env.get(JOB_ENV["run"], 1)))
    kwargs["pid"] = int(os.environ.get("EXP_WORKER_ID", "0"))
    return kwargs


class ExpApp:
    """The decorated runnable: the plain function when called with arguments, a Hydra app without."""

    def __init__(self, function: Callable[..., Any]):
        self.function = function
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return self.function(*args, **kwargs)
        # Hydra names the job after the file that defines its task function, which is this one: name it
        # after the user's file instead (``runnable.log``, not ``apps.log``), unless the command line does.
        if not any(arg.startswith("hydra.job.name=") for arg in sys.argv[1:]):
            sys.argv.append(job_name_override(inspect.getfile(self.function)))
        return self.hydra_main()()

    def hydra_main(self) -> Callable[[], Any]:
        import hydra

        function = self.function

        def task(cfg: Any) -> Any:
            return function(**job_kwargs(cfg))

        return hydra.main(version_base=None, config_path=None, config_name=None)(task)


def runnable(function: Callable[..., Any]) -> ExpApp:
    """Turn an EXP runnable (``def run(x=1, **kwargs)``) into a Hydra app; see the module docstring."""
    return ExpApp(function)


def job_name_override(module_file: str) -> str:
    """Name the jobs after the user's module file (``runnable.log``), as EXP's files are named after it."""
    from exp_compat.overrides import render_value

    return f"hydra.job.name={render_value(Path(module_file).stem)}"
