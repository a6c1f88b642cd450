"""The app script as ``__main__`` in the processes that run its jobs, as multiprocessing's spawn does it.

Under Hydra's basic launcher a job runs in the process that ran the script, so the classes and functions
the script defines are attributes of ``__main__``: ``pickle.dumps(Model())`` and ``torch.save(model)``
store them by reference, and a ``spawn`` child finds them. A worker process (exp_local) or a SLURM job
(exp_slurm) has another ``__main__``; cloudpickle would send it *copies* of the task function and of the
classes it uses, which no ``__main__`` attribute names, so pickling them there fails.

So the worker runs the script once, before its first job, under the name ``__mp_main__`` (its
``if __name__ == "__main__":`` block stays out) and makes it ``sys.modules["__main__"]``, as
``multiprocessing.spawn.prepare`` does; what the driver sends that comes from the script, the task
function first, is pickled as a reference into that module. Unlike spawn, the module is named
``__main__`` again once it has run, and so are its classes, functions and ``getLogger(__name__)``
logger, so that jobs pickle ``__main__.Model`` and log as ``__main__`` exactly as under the basic
launcher. A script that starts its Hydra app without the guard stops there, where the driver stood
when its sweep began. Where the script cannot be run again (an interactive session, a notebook, a
package's ``__main__.py``), everything travels by value, as before.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import io
import logging
import os
import sys
import types
import zipfile
from typing import Any, Iterator, List, Optional, Tuple

import cloudpickle

from hydra_plugins.exp_launcher._hydra_internals import AppStarted, apps_stopped, can_stop_apps

log = logging.getLogger("hydra_plugins.exp_launcher")

RUN_NAME = "__mp_main__"  # multiprocessing's name for the main module in a child, which it aliases too
MAX_WRAPPERS = 8  # decorators between a script's attribute and the function it wraps (hydra.main: one)


@dataclasses.dataclass(frozen=True)
class MainScript:
    """How to run the driver's ``__main__`` again: its file, or the module that ``python -m`` ran."""

    path: str
    module: Optional[str]
    argv: List[str]

    @property
    def root(self) -> str:
        """The folder Python put first on ``sys.path`` for it: the script's, or the one its package is in."""
        folder = os.path.dirname(self.path)
        for _ in range(self.module.count(".") if self.module else 0):
            folder = os.path.dirname(folder)
        return folder


def main_script() -> Optional[MainScript]:
    """The driver's main script, if a worker can run it again (None: send everything by value)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or not can_stop_apps():  # interactive, a notebook
        return None
    path = os.path.abspath(path)
    module = getattr(getattr(main, "__spec__", None), "name", None)
    if module is not None:
        if module == "__main__" or module.endswith(".__main__"):  # a package's __main__.py is all main code
            return None
    elif not os.path.isfile(path) or zipfile.is_zipfile(path) or os.path.splitext(os.path.basename(path))[0] == "ipython":
        return None
    return MainScript(path, module, list(sys.argv))


# -- the driver: what comes from the script, by reference -------------------------------------------------
class _Pickler(cloudpickle.Pickler):
    """cloudpickle, except that classes and functions of ``__main__`` go as a reference into the script that
    the worker runs, with a copy (what cloudpickle sends) for one that the worker's run does not define
    (under the ``__main__`` guard)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (type, types.FunctionType)) and getattr(obj, "__module__", None) == "__main__":
            found = _locate(obj)
            if found is not None:
                return _from_main, (*found, _copy(obj))
        return super().reducer_override(obj)


def dumps(obj: Any, main: Optional[MainScript]) -> bytes:
    """``obj`` pickled for a process that has run ``main`` (by ``prepare``); plain cloudpickle without one."""
    if main is None:
        return cloudpickle.dumps(obj)
    buffer = io.BytesIO()
    _Pickler(buffer).dump(obj)
    return buffer.getvalue()


def _locate(obj: Any) -> Optional[Tuple[str, int]]:
    """The name of ``obj`` in ``__main__`` and how many ``__wrapped__`` lead to it: the task function is
    the one that ``hydra.main`` wraps, the script's attribute is the wrapper."""
    if "<locals>" in obj.__qualname__:
        return None
    try:
        found = _attribute(obj.__qualname__)
    except AttributeError:
        return None
    for depth in range(MAX_WRAPPERS + 1):
        if found is obj:
            return obj.__qualname__, depth
        found = getattr(found, "__wrapped__", None)
        if found is None:
            return None
    return None


def _attribute(qualname: str) -> Any:
    return functools.reduce(getattr, qualname.split("."), sys.modules["__main__"])


def _copy(obj: Any) -> Optional[bytes]:
    try:
        return cloudpickle.dumps(obj)
    except Exception:  # what cloudpickle cannot copy (a function that uses a lock) only travels by reference
        return None


def _from_main(qualname: str, depth: int, copy: Optional[bytes]) -> Any:
    try:
        found = _attribute(qualname)
        for _ in range(depth):
            found = found.__wrapped__
        return found
    except AttributeError:
        if copy is None:
            raise
    log.warning(
        "%s is not defined when the app script runs as %s (defined under `if __name__ == '__main__':`?): "
        "a copy is used, whose classes cannot be pickled by reference",
        qualname,
        RUN_NAME,
    )
    return cloudpickle.loads(copy)


# -- the worker: the script run again ---------------------------------------------------------------------
def prepare(main: MainScript) -> None:
    """Run the script as the driver ran it, but as ``__mp_main__``, and make it this process's ``__main__``.

    As for ``python script.py`` its folder leads ``sys.path``, and ``sys.argv`` is the driver's. Nothing to
    do where ``__main__`` is that script already (submitit's debug executor runs jobs in the driver).
    """
    if getattr(sys.modules.get("__main__"), "__file__", None) == main.path:
        return
    try:
        _run(main)
    except (Exception, SystemExit) as error:
        raise RuntimeError(
            f"the app script {main.path} failed as it ran in the job's process (as {RUN_NAME}, so that its classes and "
            f"functions are __main__'s, as in the driver): {type(error).__name__}: {error}"
        ) from error


def _run(main: MainScript) -> None:
    sys.argv[:] = main.argv
    if main.root not in sys.path:
        sys.path.insert(0, main.root)
    module = types.ModuleType(RUN_NAME)
    if main.module is not None:
        spec = importlib.util.find_spec(main.module)
        if spec is None or spec.loader is None:
            raise ImportError(f"the app module {main.module} cannot be found in this process")
        code = spec.loader.get_code(main.module)  # type: ignore[attr-defined]
        module.__spec__, module.__loader__, module.__package__ = spec, spec.loader, spec.parent
    else:
        with io.open_code(main.path) as handle:
            code = compile(handle.read(), main.path, "exec")
    module.__file__ = main.path
    sys.modules["__main__"] = sys.modules[RUN_NAME] = module
    try:
        with apps_stopped():  # a script without a __main__ guard calls its app as it runs: it stops there
            exec(code, module.__dict__)
    except AppStarted:
        pass
    _rename(module)


def _rename(module: types.ModuleType) -> None:
    """The module, and what it defined under the name it ran as, named ``__main__``."""
    module.__name__ = "__main__"
    for key, value in list(vars(module).items()):
        if isinstance(value, logging.Logger) and value.name == RUN_NAME:
            setattr(module, key, logging.getLogger("__main__"))
        for obj in _defined(value):
            try:
                obj.__module__ = "__main__"
            except (AttributeError, TypeError):  # a class whose metaclass forbids it keeps its name
                pass


def _defined(value: Any) -> Iterator[Any]:
    """A class or function the script defined, and the classes and functions defined in a class."""
    if isinstance(value, (type, types.FunctionType)) and getattr(value, "__module__", None) == RUN_NAME:
        yield value
        if isinstance(value, type):
            for member in vars(value).values():
                yield from _defined(member)
