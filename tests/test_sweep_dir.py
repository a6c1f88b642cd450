"""A sweep directory under hostile use: two sweeps at once, huge grids, interrupts in every phase, damaged
files, odd names, huge results, the umask. Real Hydra multiruns in subprocesses, as users type them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import APPS, csv_rows

TASK = [sys.executable, str(APPS / "task_app.py"), "-m"]


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def records(sweep: Path) -> list:
    return sorted((sweep / ".exp_jobs").glob("[0-9]*.json"))


def test_a_second_sweep_in_a_directory_is_refused_while_the_first_runs_and_a_killed_one_leaves_no_lock(tmp_path, spawn):
    sweep = tmp_path / "sweep"
    log = tmp_path / "runs.jsonl"
    args = [*TASK, "hydra/sweeper=exp_grid", "+x=range(0,6)", f"+behave.record={log}", f"hydra.sweep.dir={sweep}"]
    # job 1 (job 2 of the killed sweep) runs until the test creates the file named by behave.hold
    first = spawn(
        [*args, "+behave.hold_if=1", f"+behave.hold={tmp_path / 'go'}"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(lambda: sweep.is_dir() and len(records(sweep)) >= 1)
    for extra in (["hydra.sweeper.resume=true"], []):
        second = subprocess.run([*args, *extra], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1 and "Traceback" not in second.stderr, second.stderr
        assert f"another sweep (pid {first.pid} on" in second.stderr and str(sweep) in second.stderr
    (tmp_path / "go").touch()
    assert first.wait(timeout=120) == 0
    rows = csv_rows(sweep / "exp_results.csv")
    assert sorted(int(r["x"]) for r in rows) == list(range(6))  # the first sweep's rows, each once
    assert len(log.read_text().splitlines()) == 6  # no job ran twice
    assert not list(sweep.glob("exp_results.*.csv"))  # the refused sweeps set nothing aside

    # SIGKILL leaves no stale lock: the resume runs, and only what never finished
    held = [*args, "hydra.sweep.dir=" + str(tmp_path / "killed"), "+behave.hold_if=2", f"+behave.hold={tmp_path / 'again'}"]
    killed = spawn(held, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(records(tmp_path / "killed")) >= 2 if (tmp_path / "killed").is_dir() else False)
    killed.kill()
    killed.wait()
    (tmp_path / "again").touch()
    done = subprocess.run(
        [*held, "hydra.sweeper.resume=true"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(csv_rows(tmp_path / "killed" / "exp_results.csv")) == 6


HUGE = [f"+p{i}=range(0,10)" for i in range(12)]  # 10^12 configurations


@pytest.mark.parametrize("signum, words", [(signal.SIGINT, "interrupted (Ctrl-C)"), (signal.SIGTERM, "terminated (SIGTERM)")])
def test_a_huge_grid_starts_at_once_and_stops_cleanly_while_planning_and_while_running(tmp_path, spawn, signum, words):
    sweep = tmp_path / "sweep"
    args = [*TASK, "hydra/sweeper=exp_grid", *HUGE, "+behave.sleep=0.2", f"hydra.sweep.dir={sweep}"]
    # while <name>_params.csv is being written (its temporary file exists)
    driver = spawn(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: sweep.is_dir() and any(p.name.startswith(".tmp-") for p in sweep.iterdir()))
    driver.send_signal(signum)
    out, err = driver.communicate(timeout=60)
    assert driver.returncode == 1 and "Traceback" not in err and words in err, err
    assert not [p for p in sweep.iterdir() if p.name.startswith(".tmp-")]
    # while jobs run: the first job starts within seconds, the plan lists the first million jobs
    started = time.monotonic()
    driver = spawn([*args, "hydra.sweeper.resume=true"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(records(sweep)) >= 1, timeout=60)
    assert time.monotonic() - started < 30
    driver.send_signal(signum)
    out, err = driver.communicate(timeout=60)
    assert driver.returncode == 1 and "Traceback" not in err and words in err and "hydra.sweeper.resume=true" in err, err
    with open(sweep / "exp_params.csv", encoding="utf-8") as planned:
        assert sum(1 for _ in planned) == 1 + 1_000_000
    assert "1,000,000,000,000 jobs planned" in out


@pytest.mark.parametrize("name", ["a/b", "", "..", "-x"])
def test_a_name_that_is_not_a_file_name_is_refused_and_writes_nothing(tmp_path, name):
    done = subprocess.run(
        [*TASK, "hydra/sweeper=exp_grid", "+x=range(0,2)", f"hydra.sweeper.name='{name}'", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr and "hydra.sweeper.name must be a plain file name" in done.stderr
    assert not (tmp_path / "sweep").exists()


def test_results_files_honour_the_umask(tmp_path):
    sweep = tmp_path / "sweep"
    done = subprocess.run(
        [*TASK, "hydra/sweeper=exp_gopt", "+x=interval(0,1)", "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o027),
    )
    assert done.returncode == 0, done.stderr
    for name in ("opt_configurations.csv", "opt_sweep.json", "optimization_results.yaml"):
        assert (sweep / name).stat().st_mode & 0o777 == 0o640, name


@pytest.mark.parametrize("damage", ["", "x,id,ru"], ids=["empty", "torn-header"])
def test_an_empty_or_torn_results_csv_is_rebuilt_from_the_job_records(tmp_path, damage):
    sweep = tmp_path / "sweep"
    log = tmp_path / "runs.jsonl"
    args = [*TASK, "hydra/sweeper=exp_grid", "+x=range(0,4)", f"+behave.record={log}", f"hydra.sweep.dir={sweep}"]
    assert subprocess.run(args, cwd=tmp_path, capture_output=True, timeout=120).returncode == 0
    (sweep / "exp_results.csv").write_text(damage, encoding="utf-8")
    done = subprocess.run([*args, "hydra.sweeper.resume=true"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(int(r["x"]) for r in csv_rows(sweep / "exp_results.csv")) == [0, 1, 2, 3]
    assert len(log.read_text().splitlines()) == 4  # rebuilt, not re-run


@pytest.mark.parametrize("sweeper", ["exp_grid", "exp_gopt"])
def test_a_huge_return_value_is_bounded_in_the_results_and_the_objective_is_still_read(tmp_path, sweeper):
    sweep = tmp_path / "sweep"
    space = "+x=range(0,3)" if sweeper == "exp_grid" else "+x=interval(0,1)"
    extra = [] if sweeper == "exp_grid" else ["hydra.sweeper.n_trials=3", "hydra.sweeper.objective=loss"]
    done = subprocess.run(
        [
            *TASK,
            f"hydra/sweeper={sweeper}",
            space,
            "+behave.result=big",
            "hydra/launcher=exp_local",
            "hydra.launcher.workers=1",
            *extra,
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = next(p for p in sweep.glob("*.csv") if p.name != "exp_params.csv")
    assert results.stat().st_size < 100_000
    rows = csv_rows(results)
    assert len(rows) == 3 and all(r["exp.status"] == "completed" for r in rows)
    if sweeper == "exp_gopt":
        assert all(float(r["exp.evaluation"]) == float(r["x"]) for r in rows)
    else:
        kept = json.loads(rows[0]["exp.result"])
        assert kept["loss"] == 0 and kept["blob"].startswith("<str of 20,000,000 bytes, too large")
    assert all(p.stat().st_size < 10_000 for p in records(sweep))
