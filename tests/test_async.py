"""Asynchronous sweeping with exp_local: no batch barrier, distinct in-flight trials, Ctrl-C."""

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
from test_exp_local import marked_processes, records, wait_for


def test_no_barrier_a_free_slot_starts_the_next_job_at_once(tmp_path, hydra_app):
    log = tmp_path / "jobs.jsonl"
    done = hydra_app(
        "hydra/sweeper=exp_grid",
        "hydra/launcher=exp_local",
        "hydra.launcher.workers=2",
        "+x=range(0,5)",
        "+behave.hold_if=0",  # x=0 runs until the four others have ended (60 s at most)
        f"+behave.hold={log}",
        "+behave.hold_lines=4",
        f"+behave.record={log}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "keeping 2 jobs in flight" in done.stdout + done.stderr
    jobs = {j["config"]["x"]: j for j in records(log)}
    slow = jobs[0]
    # x=2, 3 and 4 (the 2nd batch and later in batch mode) all started while the slow job ran
    assert all(jobs[x]["started"] < slow["ended"] for x in (2, 3, 4))
    assert len(csv_rows(tmp_path / "sweep" / "exp_results.csv")) == 5


def test_async_gopt_never_runs_two_identical_trials_at_once(tmp_path, hydra_app):
    log = tmp_path / "jobs.jsonl"
    (tmp_path / "s.conf").write_text(
        '[x]\ntype = "range"\nbounds = [0, 2]\ndtype = "int"\n[y]\ntype = "list"\nvalue = ["a", "b"]\n', encoding="utf-8"
    )
    done = hydra_app(
        "hydra/sweeper=exp_gopt",
        "hydra/launcher=exp_local",
        "hydra.launcher.workers=3",
        "+exp.params=s.conf",
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.n_initial_points=2",
        "+behave.sleep=0.3",
        "+behave.result=const",
        f"+behave.record={log}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = records(log)
    assert len(jobs) == 6 and len({(j["config"]["x"], j["config"]["y"]) for j in jobs}) == 6
    for job in jobs:  # every trial running at the same moment has another configuration
        during = [o for o in jobs if o is not job and o["started"] < job["ended"] and job["started"] < o["ended"]]
        assert all((o["config"]["x"], o["config"]["y"]) != (job["config"]["x"], job["config"]["y"]) for o in during)
    assert max(len([o for o in jobs if o["started"] < j["ended"] and j["started"] < o["ended"]]) for j in jobs) >= 2
    assert "n_jobs defaults to the launcher's 3 slots, more than n_initial_points=2" in done.stdout + done.stderr


def grid_driver(spawn, tmp_path: Path, *extra: str) -> subprocess.Popen:
    """exp_grid on exp_local, the jobs recording what they ran in jobs.jsonl."""
    return spawn(
        [
            sys.executable,
            str(APPS / "task_app.py"),
            "-m",
            "hydra/sweeper=exp_grid",
            "hydra/launcher=exp_local",
            f"+behave.record={tmp_path / 'jobs.jsonl'}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            *extra,
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def driver(spawn, tmp_path: Path, mark: str, *extra: str) -> subprocess.Popen:
    return grid_driver(
        spawn,
        tmp_path,
        "hydra.launcher.workers=2",
        "+x=range(0,8)",
        "+behave.sleeps=[0.2,0.2,0.2,5,5,0.2,0.2,0.2]",
        f"+hydra.launcher.env.EXP_TEST_MARK={mark}",
        *extra,
    )


def started_jobs(sweep: Path) -> int:
    return len([p for p in sweep.iterdir() if p.name.isdigit()]) if sweep.exists() else 0


def test_ctrl_c_cancels_running_jobs_and_the_sweep_resumes(tmp_path, spawn):
    mark = f"exp-test-{time.time_ns()}"
    first = driver(spawn, tmp_path, mark)
    results = tmp_path / "sweep" / "exp_results.csv"
    assert wait_for(lambda: len(csv_rows(results)) >= 3 if results.exists() else False)
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
    # the two slow jobs running (jobs handed ahead may start out of order: wait for these two)
    assert wait_for(lambda: (tmp_path / "sweep" / "3").exists() and (tmp_path / "sweep" / "4").exists())
    time.sleep(0.3)
    interrupted_at = time.time()
    first.send_signal(signal.SIGINT)
    output = first.communicate(timeout=60)[0]
    assert first.returncode == 1 and "waiting for" in output
    kept = {r["x"] for r in csv_rows(tmp_path / "sweep" / "exp_results.csv")}
    assert {"3", "4"} <= kept
    # jobs submitted ahead (handed to the busy workers) had not started: none starts after Ctrl-C
    assert all(j["started"] < interrupted_at for j in records(tmp_path / "jobs.jsonl"))
    assert wait_for(lambda: not marked_processes(mark), timeout=10)


def journal(sweep: Path) -> list:
    path = sweep / ".exp_jobs" / "launched.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def finished(sweep: Path) -> dict:
    """Job number -> configuration, for each launched job whose own record says it ended."""
    return {
        e["job_num"]: json.dumps(e["params"], sort_keys=True)
        for e in journal(sweep)
        if (sweep / ".exp_jobs" / f"{e['job_num']}.json").exists()
    }


@pytest.mark.parametrize("launcher", ["exp_local", "exp_slurm"])
@pytest.mark.parametrize("sweeper", ["exp_grid", "exp_gopt"])
def test_resume_after_sigkill_of_an_asynchronous_sweep_runs_each_configuration_once(tmp_path, spawn, request, sweeper, launcher):
    """SIGKILL the driver while job #3 (the slow one) runs, resume: what finished is kept, none of it runs again,
    and every configuration ends exactly once over both runs.

    exp_local's workers die with their driver: job #3 never ends and runs again on resume. SLURM jobs outlive
    their driver: the resume, started at once, cancels those still running (job #3 among them) before it reads
    which jobs finished, so none of them finishes unseen while the resumed run repeats it.
    """
    sweep, mark, executions = tmp_path / "sweep", f"exp-test-{time.time_ns()}", tmp_path / "jobs.jsonl"
    if launcher == "exp_slurm":
        from test_slurm import EXP_SLURM

        slurm = request.getfixturevalue("slurm")
        launch = [*EXP_SLURM, "hydra.launcher.array_parallelism=2"]
    else:
        launch = ["hydra/launcher=exp_local", "hydra.launcher.workers=2", f"+hydra.launcher.env.EXP_TEST_MARK={mark}"]
    space = (
        ["+x=range(0,8)"]
        if sweeper == "exp_grid"
        else ["+x=range(0,40)", "hydra.sweeper.n_trials=8", "hydra.sweeper.n_initial_points=3", "hydra.sweeper.seed=0"]
    )
    sleeps = "{" + ",".join(f"{n}:{15 if n == 3 else 0.5}" for n in range(8)) + "}"  # by job number
    args = [
        sys.executable,
        str(APPS / "job_app.py"),
        "-m",
        f"hydra/sweeper={sweeper}",
        *launch,
        *space,
        f"+by_job.sleeps={sleeps}",
        f"+by_job.record={executions}",
        f"hydra.sweep.dir={sweep}",
    ]
    first = spawn(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: len(finished(sweep)) >= 3 and (sweep / "3").exists(), timeout=180)
    first.send_signal(signal.SIGKILL)
    first.wait()
    if launcher == "exp_local":
        assert wait_for(lambda: not marked_processes(mark), timeout=10)  # the workers died with their driver
    else:
        assert slurm.jobs()  # job #3 is still running on the cluster, unwatched
    kept = set(finished(sweep).values())
    assert 3 <= len(kept) < 8 and 3 not in finished(sweep)
    launched_before = len(journal(sweep))

    done = subprocess.run([*args, "hydra.sweeper.resume=true"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    if launcher == "exp_slurm":  # whatever the first run left on the cluster has ended by now
        assert wait_for(lambda: slurm.jobs() == [], timeout=60)
    kept = {finished(sweep)[n] for n in range(launched_before) if n in finished(sweep)}  # orphans may end before the resume ends them
    cut_short = {json.dumps(e["params"], sort_keys=True) for e in journal(sweep)[:launched_before]} - kept
    rows = csv_rows(sweep / ("exp_results.csv" if sweeper == "exp_grid" else "opt_configurations.csv"))
    assert len(rows) == 8 and all(r["exp.status"] == "completed" for r in rows) and len({r["x"] for r in rows}) == 8
    ended = list(finished(sweep).values())
    assert len(ended) == 8 and len(set(ended)) == 8  # each configuration ended exactly once, over both runs
    assert 3 not in finished(sweep)  # the slow job was cut short (killed with its worker, or cancelled on SLURM)
    relaunched = {json.dumps(e["params"], sort_keys=True) for e in journal(sweep)[launched_before:]}
    assert not relaunched & kept and cut_short <= relaunched  # nothing that ended ran again; the rest did
    assert not {json.dumps({"x": j["x"]}) for j in records(executions) if j["num"] >= launched_before} & kept
    if launcher == "exp_slurm":
        assert "SLURM jobs that an earlier run of this sweep left running" in done.stdout


def test_a_worker_goes_on_to_the_job_handed_ahead_without_the_driver(tmp_path, spawn):
    """exp_local hands a busy worker its next job before the current one ends: with the driver frozen
    (SIGSTOP) while job 0 runs, the worker still starts job 1 when job 0 ends."""
    release = tmp_path / "release"
    first = grid_driver(
        spawn,
        tmp_path,
        "hydra.launcher.workers=1",
        "+x=range(0,2)",
        "+behave.hold_if=0",  # job 0 runs until the driver is frozen
        f"+behave.hold={release}",
        "hydra.verbose=hydra_plugins.exp_launcher",
    )
    assert any("job #1 handed ahead to worker 0" in line for line in first.stdout)  # until the driver ends
    os.kill(first.pid, signal.SIGSTOP)
    try:
        release.touch()
        assert wait_for(lambda: len(records(tmp_path / "jobs.jsonl")) == 2, timeout=60)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    output = first.communicate(timeout=60)[0]
    assert first.returncode == 0, output[-3000:]
    jobs = records(tmp_path / "jobs.jsonl")
    assert jobs[0]["pid"] == jobs[1]["pid"] and jobs[1]["started"] >= jobs[0]["ended"]
    assert len(csv_rows(tmp_path / "sweep" / "exp_results.csv")) == 2


def test_a_job_handed_ahead_is_taken_back_for_an_idle_worker(tmp_path, hydra_app):
    """A job handed ahead to the worker of a long job would wait for it while the other worker, done with
    everything queued, sat idle: it is taken back and runs there."""
    log = tmp_path / "jobs.jsonl"
    done = hydra_app(
        "hydra/sweeper=exp_grid",
        "hydra/launcher=exp_local",
        "hydra.launcher.workers=2",
        "+x=range(0,6)",
        "+behave.hold_if=0",  # x=0 runs until the five others have ended (60 s at most)
        f"+behave.hold={log}",
        "+behave.hold_lines=5",
        f"+behave.record={log}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = {j["config"]["x"]: j for j in records(log)}
    slow = jobs[0]
    assert all(jobs[x]["started"] < slow["ended"] and jobs[x]["pid"] != slow["pid"] for x in range(1, 6))
    assert len(csv_rows(tmp_path / "sweep" / "exp_results.csv")) == 6


def test_a_job_handed_ahead_to_a_worker_that_dies_runs_elsewhere(tmp_path, hydra_app):
    """The worker dies in its job (os._exit) with the next job handed ahead: that job was never started, so it
    runs on the slot's new worker and completes; only the job that died fails."""
    log = tmp_path / "jobs.jsonl"
    done = hydra_app(
        "hydra/sweeper=exp_grid",
        "hydra/launcher=exp_local",
        "hydra.launcher.workers=1",
        "+x=range(0,3)",
        "+behave.sleeps=[1.0,0.1,0.1]",
        "+behave.exit_if=0",
        f"+behave.record={log}",
    )
    rows = {r["x"]: r for r in csv_rows(tmp_path / "sweep" / "exp_results.csv")}
    assert rows["0"]["exp.status"] == "failed" and "the worker process died" in rows["0"]["exp.error"], done.stderr[-3000:]
    assert rows["1"]["exp.status"] == rows["2"]["exp.status"] == "completed"
    jobs = {j["config"]["x"]: j for j in records(log)}
    assert jobs[1]["pid"] != jobs[0]["pid"] and jobs[1]["started"] >= jobs[0]["ended"]
