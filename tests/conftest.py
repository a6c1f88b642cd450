"""Shared helpers: run our console script and real Hydra apps as a user would."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

APPS = Path(__file__).parent / "apps"
BIN = Path(sys.executable).parent


def run(args: List[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1", HYDRA_FULL_ERROR="0")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def exp_compat(tmp_path: Path):
    """Run the installed ``exp-compat`` console script (not the module) in ``tmp_path``."""
    script = shutil.which("exp-compat", path=str(BIN)) or shutil.which("exp-compat")
    assert script, "exp-compat is not installed: run the README's install command"

    def call(*args: str) -> subprocess.CompletedProcess:
        return run([script, *args], cwd=tmp_path)

    return call


def received_configs(sweep_dir: Path) -> List[Dict[str, Any]]:
    """The configs that the jobs of a multirun recorded (tests/apps/dump_app.py)."""
    found = []
    for path in sorted(glob.glob(str(sweep_dir / "*" / "received.json"))):
        with open(path, encoding="utf-8") as handle:
            found.append(json.load(handle))
    return found


def typed(value: Any) -> Any:
    """A value with its exact type attached, for comparisons where 1, 1.0 and True differ."""
    if isinstance(value, list):
        return ("list", tuple(typed(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, typed(v)) for k, v in value.items())))
    return (type(value).__name__, value)


def csv_rows(path: Path) -> List[Dict[str, str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def spawn():
    """``subprocess.Popen`` for a test; what is still running when the test ends is killed, so a failing
    test leaves no driver behind (and exp_local's workers end with their driver)."""
    started: List[subprocess.Popen] = []

    def start(args: List[str], **kwargs: Any) -> subprocess.Popen:
        # Ctrl-C as a terminal delivers it, even when the suite runs where SIGINT is ignored (a background job
        # of a shell without job control): Python leaves an ignored SIGINT ignored in its children
        kwargs.setdefault("preexec_fn", lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        started.append(subprocess.Popen(args, **kwargs))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def hydra_app(tmp_path: Path):
    """Run tests/apps/task_app.py as a user would (a subprocess in tmp_path), sweep dir tmp_path/sweep."""

    def call(*overrides: str, timeout: float = 300) -> subprocess.CompletedProcess:
        args = [sys.executable, str(APPS / "task_app.py"), "-m", *overrides]
        if not any(o.startswith("hydra.sweep.dir=") for o in overrides):
            args.append(f"hydra.sweep.dir={tmp_path / 'sweep'}")
        return run(args, cwd=tmp_path, timeout=timeout)

    return call


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A real single-node SLURM cluster on localhost (tests/local_slurm.py), for the whole session.

    Installed with apt-get when missing (root only; elsewhere the SLURM tests are skipped).
    SLURM_CONF is exported so that every subprocess, sbatch included, reaches this cluster.
    """
    sys.path.insert(0, str(Path(__file__).parent))
    from local_slurm import LocalSlurm, SlurmUnavailable

    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except SlurmUnavailable as reason:
        pytest.skip(str(reason))
    saved = os.environ.get("SLURM_CONF")
    os.environ.update(cluster.env)
    yield cluster
    cluster.stop()
    if saved is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = saved
