"""The app script is ``__main__`` in exp_local's workers, as in the process that runs it under Hydra's basic launcher.

Each job of the app below pickles a class of the script, saves and loads a whole torch model of it, and
starts a ``spawn`` child whose target is a function of the script; it records what it saw. Every import of
the script appends who imported it to ``imports.txt``; the ``__main__`` guard appends to ``sweeps.txt``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import run
from test_exp_local import fake_nvml  # noqa: F401 (a fixture)
from test_slurm import EXP_SLURM

APP = """
import json, logging, multiprocessing, os, pickle, sys
import hydra, torch

log = logging.getLogger(__name__)
{helper_import}

def who():
    if "--multiprocessing-fork" in sys.orig_argv:
        return "spawn child"
    return "worker" if "EXP_WORKER_ID" in os.environ or "SLURM_JOB_ID" in os.environ else "driver"


with open(os.environ["EXP_TEST_IMPORTS"], "a") as handle:
    handle.write(f"{{who()}} {{__name__}}\\n")


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)


def touch(path, text):
    with open(path, "w") as handle:
        handle.write(text)


@hydra.main(version_base=None, config_path=None, config_name=None)
def main(cfg):
    copy = pickle.loads(pickle.dumps(Model()))
    torch.save(Model(), "model.pt")
    loaded = torch.load("model.pt", weights_only=False)
    child = multiprocessing.get_context("spawn").Process(target=touch, args=("child.txt", f"from job {{cfg.x}}"))
    if cfg.spawn:  # a script without a __main__ guard cannot spawn: the child would run its sweep (multiprocessing's rule)
        child.start()
        child.join(120)
    with open("child.txt") if os.path.exists("child.txt") else open(os.devnull) as handle:
        written = handle.read()
    record = {{"x": cfg.x, "pickled": type(copy) is Model, "loaded": type(loaded) is Model, "exitcode": child.exitcode,
              "written": written, "module": Model.__module__, "logger": log.name, "name": __name__,
              "task_is_main_attribute": main.__wrapped__ is sys.modules["__main__"].main.__wrapped__}}
    with open(os.path.join(os.environ["EXP_TEST_OUT"], f"job_{{cfg.x}}.json"), "w") as handle:
        json.dump(record, handle)
    log.info("job %s done", cfg.x)

{call}
"""
GUARDED = """if __name__ == "__main__":
    with open(os.environ["EXP_TEST_SWEEPS"], "a") as handle:
        handle.write("sweep\\n")
    main()"""
UNGUARDED = "main()"
LAUNCHERS = {
    "basic": ["hydra/launcher=basic"],
    "exp_local": ["hydra/launcher=exp_local", "hydra.launcher.workers=2"],
    "exp_gpu": ["hydra/launcher=exp_gpu"],
    "exp_slurm": [*EXP_SLURM, "hydra.launcher.mem_gb=2"],  # torch in the job and in its spawn child
}
WORKERS = {"basic": [0], "exp_local": [1, 2], "exp_gpu": [1, 2], "exp_slurm": [4]}  # imports of the script: not one per job


def write_app(folder: Path, call: str, helper: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if helper:  # a module next to the script, found because the script's directory is first on sys.path
        (folder / "helper.py").write_text("VALUE = 1\n", encoding="utf-8")
    text = APP.format(helper_import="import helper" if helper else "", call=call)
    (folder / "app.py").write_text(text, encoding="utf-8")


@pytest.fixture
def multirun(tmp_path: Path, monkeypatch):
    """``multirun(command, launcher, spawn)``: the app's four jobs, run from ``tmp_path`` (each job in a
    directory of its own); what the jobs and the script's imports recorded."""
    out = tmp_path / "out"
    files = {name: tmp_path / f"{name}.txt" for name in ("imports", "sweeps")}
    monkeypatch.setenv("EXP_TEST_OUT", str(out))
    for name, path in files.items():
        monkeypatch.setenv(f"EXP_TEST_{name.upper()}", str(path))

    def call(command: List[str], launcher: str, spawn: bool = True) -> Dict[str, Any]:
        out.mkdir()
        args = [
            sys.executable,
            *command,
            "-m",
            "+x=1,2,3,4",
            f"+spawn={spawn}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            "hydra.job.chdir=true",
        ]
        done = run([*args, *LAUNCHERS[launcher]], cwd=tmp_path, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        jobs = [json.loads((out / f"job_{x}.json").read_text()) for x in (1, 2, 3, 4)]
        return {"jobs": jobs, **{name: path.read_text().splitlines() if path.exists() else [] for name, path in files.items()}}

    return call


def check(seen: Dict[str, Any], launcher: str, sweeps: List[str], spawned: bool = True) -> None:
    """Every job did what it does under the basic launcher; the script was imported once per process."""
    for job in seen["jobs"]:
        assert job == {
            "x": job["x"],
            "pickled": True,
            "loaded": True,
            "exitcode": 0 if spawned else None,
            "written": f"from job {job['x']}" if spawned else "",
            "module": "__main__",
            "logger": "__main__",
            "name": "__main__",
            "task_is_main_attribute": True,
        }
    imports = seen["imports"]
    workers = imports.count("worker __mp_main__")
    children = 4 if spawned else 0
    assert imports.count("driver __main__") == 1 and imports.count("spawn child __mp_main__") == children, imports
    assert workers == len(imports) - 1 - children and workers in WORKERS[launcher], imports
    assert seen["sweeps"] == sweeps


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_the_scripts_classes_and_functions_pickle_in_jobs_as_under_the_basic_launcher(tmp_path, multirun, launcher, request):
    request.getfixturevalue("fake_nvml")("GPU-a", "GPU-b")  # exp_gpu's two workers
    if launcher == "exp_slurm":
        request.getfixturevalue("slurm")  # a real SLURM cluster on this machine, or the test is skipped
    write_app(tmp_path / "src", GUARDED, helper=True)
    check(multirun(["src/app.py"], launcher), launcher, sweeps=["sweep"])  # a relative path, jobs in other directories


def test_a_script_run_as_a_module_is_main_in_the_workers_too(tmp_path, multirun):
    write_app(tmp_path / "package", GUARDED)
    (tmp_path / "package" / "__init__.py").write_text("", encoding="utf-8")
    check(multirun(["-m", "package.app"], "exp_local"), "exp_local", sweeps=["sweep"])


@pytest.mark.parametrize("launcher", ["basic", "exp_local"])
def test_a_script_without_a_main_guard_runs_one_sweep(tmp_path, multirun, launcher):
    """The worker imports the script up to its call of the Hydra app, which starts no second sweep there."""
    write_app(tmp_path, UNGUARDED)
    seen = multirun(["app.py"], launcher, spawn=False)
    check(seen, launcher, sweeps=[], spawned=False)
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["0", "1", "2", "3", "multirun.yaml"]


def test_a_task_defined_under_the_main_guard_still_runs_as_a_copy(tmp_path):
    """What a worker's run of the script leaves undefined travels by value, as before, with a warning."""
    script = tmp_path / "guarded.py"
    script.write_text(
        "import hydra\n\n"
        'if __name__ == "__main__":\n'
        "    class Point:\n"
        "        pass\n\n"
        "    @hydra.main(version_base=None, config_path=None, config_name=None)\n"
        "    def main(cfg):\n"
        "        assert type(Point()).__name__ == 'Point'\n\n"
        "    main()\n",
        encoding="utf-8",
    )
    args = [sys.executable, str(script), "-m", "+x=1,2", "hydra/launcher=exp_local", "hydra.launcher.workers=2"]
    done = run([*args, f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "main is not defined when the app script runs as __mp_main__" in done.stdout + done.stderr
