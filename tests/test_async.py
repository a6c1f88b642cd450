"""Asynchronous sweeping with exp_local: no batch barrier, distinct in-flight trials, Ctrl-C."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import APPS, csv_rows
from test_exp_local import marked_processes, records, wait_for


def test_no_barrier_a_free_slot_starts_the_next_job_at_once(tmp_path, hydra_app):
    log = tmp_path / "jobs.jsonl"
    done = hydra_app("hydra/sweeper=exp_grid", "hydra/launcher=exp_local", "hydra.launcher.workers=2", "+x=range(0,5)",
                     "+behave.sleeps=[2.5,0.3,0.3,0.3,0.3]", f"+behave.record={log}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "keeping 2 jobs in flight" in done.stdout + done.stderr
    jobs = {j["config"]["x"]: j for j in records(log)}
    slow = jobs[0]
    # x=2, 3 and 4 (the 2nd batch and later in batch mode) all started while the slow job ran
    assert all(jobs[x]["started"] < slow["ended"] for x in (2, 3, 4))
    assert len(csv_rows(tmp_path / "sweep" / "exp_results.csv")) == 5


def test_async_gopt_never_runs_two_identical_trials_at_once(tmp_path, hydra_app):
    log = tmp_path / "jobs.jsonl"
    (tmp_path / "s.conf").write_text('[x]\ntype = "range"\nbounds = [0, 2]\ndtype = "int"\n'
                                     '[y]\ntype = "list"\nvalue = ["a", "b"]\n', encoding="utf-8")
    done = hydra_app("hydra/sweeper=exp_gopt", "hydra/launcher=exp_local", "hydra.launcher.workers=3", "+exp.params=s.conf",
                     "hydra.sweeper.n_trials=6", "hydra.sweeper.n_initial_points=2", "+behave.sleep=0.3",
                     "+behave.result=const", f"+behave.record={log}")
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = records(log)
    assert len(jobs) == 6 and len({(j["config"]["x"], j["config"]["y"]) for j in jobs}) == 6
    for job in jobs:  # every trial running at the same moment has another configuration
        during = [o for o in jobs if o is not job and o["started"] < job["ended"] and job["started"] < o["ended"]]
        assert all((o["config"]["x"], o["config"]["y"]) != (job["config"]["x"], job["config"]["y"]) for o in during)
    assert max(len([o for o in jobs if o["started"] < j["ended"] and j["started"] < o["ended"]]) for j in jobs) >= 2
    assert "n_jobs defaults to the launcher's 3 slots, more than n_initial_points=2" in done.stdout + done.stderr


def driver(spawn, tmp_path: Path, mark: str, *extra: str) -> subprocess.Popen:
    return spawn(
        [sys.executable, str(APPS / "task_app.py"), "-m", "hydra/sweeper=exp_grid", "hydra/launcher=exp_local",
         "hydra.launcher.workers=2", "+x=range(0,8)", "+behave.sleeps=[0.2,0.2,0.2,5,5,0.2,0.2,0.2]",
         f"+behave.record={tmp_path / 'jobs.jsonl'}", f"+hydra.launcher.env.EXP_TEST_MARK={mark}",
         f"hydra.sweep.dir={tmp_path / 'sweep'}", *extra],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def started_jobs(sweep: Path) -> int:
    return len([p for p in sweep.iterdir() if p.name.isdigit()]) if sweep.exists() else 0


def test_ctrl_c_cancels_running_jobs_and_the_sweep_resumes(tmp_path, spawn):
    mark = f"exp-test-{time.time_ns()}"
    first = driver(spawn, tmp_path, mark)
    assert wait_for(lambda: len(csv_rows(tmp_path / "sweep" / "exp_results.csv")) >= 3 if (tmp_path / "sweep" / "exp_results.csv").exists() else False)
    assert wait_for(lambda: started_jobs(tmp_path / "sweep") >= 5)  # the two slow jobs are running
    first.send_signal(signal.SIGINT)
    output = first.communicate(timeout=30)[0]
    assert first.returncode == 1 and "interrupted (Ctrl-C)" in output and "hydra.sweeper.resume=true" in output
    assert wait_for(lambda: not marked_processes(mark), timeout=10)
    kept = {r["x"] for r in csv_rows(tmp_path / "sweep" / "exp_results.csv")}
    assert "3" not in kept and "4" not in kept  # cancelled, not recorded as finished
    executed = len(records(tmp_path / "jobs.jsonl"))

    again = driver(spawn, tmp_path, mark, "hydra.sweeper.resume=true")
    assert again.wait(timeout=120) == 0
    rows = csv_rows(tmp_path / "sweep" / "exp_results.csv")
    assert sorted(int(r["x"]) for r in rows) == list(range(8))
    rerun = {j["config"]["x"] for j in records(tmp_path / "jobs.jsonl")[executed:]}
    assert {3, 4} <= rerun and not rerun & {int(x) for x in kept}


def test_ctrl_c_with_on_interrupt_wait_lets_running_jobs_finish(tmp_path, spawn):
    mark = f"exp-test-{time.time_ns()}"
    first = driver(spawn, tmp_path, mark, "hydra.sweeper.on_interrupt=wait")
    assert wait_for(lambda: started_jobs(tmp_path / "sweep") >= 5)
    time.sleep(0.3)
    first.send_signal(signal.SIGINT)
    output = first.communicate(timeout=60)[0]
    assert first.returncode == 1 and "waiting for" in output
    kept = {r["x"] for r in csv_rows(tmp_path / "sweep" / "exp_results.csv")}
    assert {"3", "4"} <= kept
    assert wait_for(lambda: not marked_processes(mark), timeout=10)
