"""exp_local's process lifecycle, with jobs that misbehave: real Hydra runs, real signals, the process table.

Each job of the app below does what ``+do`` says for its ``x`` and appends a record (pid, cwd, environment,
which earlier children are still alive) to ``+record``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import APPS, csv_rows, run
from test_exp_local import alive, marked_processes, records, wait_for

APP = """
import json, os, signal, subprocess, sys, time
import hydra


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


@hydra.main(version_base=None, config_path=None, config_name=None)
def main(cfg):
    do = cfg.do[cfg.x]
    earlier = [json.loads(line) for line in open(cfg.record)] if os.path.exists(cfg.record) else []
    record = {"x": cfg.x, "pid": os.getpid(), "cwd": os.getcwd(),
              "env": {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "EXP_TEST_LEAK")},
              "sigterm": str(signal.getsignal(signal.SIGTERM)), "leaked_path": "/leaked" in sys.path,
              "children_alive": [r["child"] for r in earlier if r.get("child") and alive(r["child"])]}
    if do in ("detach", "spin"):  # a child in a session of its own: outside the job's process group
        record["child"] = subprocess.Popen(["sleep", "3600"], start_new_session=True).pid
    with open(cfg.record, "a") as handle:
        handle.write(json.dumps(record) + "\\n")
    if do == "spin":
        sum(range(10**11))  # C code holding the interpreter lock for minutes
    elif do == "interrupt":
        raise KeyboardInterrupt
    elif do == "unset":  # a variable that Hydra set from hydra.job.env_set, and restores after the job
        del os.environ["EXP_CONFIG_ID"]
    elif do == "exit":
        sys.exit(3)
    elif do == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
    elif do == "leak":
        os.chdir("/")
        os.environ["CUDA_VISIBLE_DEVICES"] = "7"
        os.environ["EXP_TEST_LEAK"] = "1"
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.path.insert(0, "/leaked")
    elif do == "sleep":
        time.sleep(30)
    return cfg.x


if __name__ == "__main__":
    main()
"""


@pytest.fixture
def app(tmp_path: Path):
    """``app(*overrides)``: the command line of a multirun of the misbehaving app, sweep dir tmp_path/sweep."""
    path = tmp_path / "hostile_app.py"
    path.write_text(APP, encoding="utf-8")

    def command(*overrides: str) -> list:
        return [sys.executable, str(path), "-m", f"+record={tmp_path / 'jobs.jsonl'}", f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides]

    return command


@pytest.fixture
def mark():
    return f"exp-test-{time.time_ns()}"


def by_x(tmp_path: Path):
    return {r["x"]: r for r in records(tmp_path / "jobs.jsonl")}


SLOW_SECOND_WORKER = """
import os, time
if os.environ.get("EXP_WORKER_ID") == "1":  # starts only once job 0 runs (is in C code) on worker 0
    deadline = time.monotonic() + 60
    while not os.path.exists({record!r}) and time.monotonic() < deadline:
        time.sleep(0.05)
"""


def test_a_job_blocked_in_c_code_and_its_detached_child_end_when_the_driver_is_killed(tmp_path, app, spawn, mark):
    """Worker 1 starts late, as a loaded machine with cold caches made it do: job 1, handed ahead to worker 0
    meanwhile, could not be taken back from a worker whose job holds the interpreter lock, and never ran."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SLOW_SECOND_WORKER.format(record=str(tmp_path / "jobs.jsonl")))
    path = os.pathsep.join([str(tmp_path / "site"), *filter(None, [os.environ.get("PYTHONPATH")])])
    driver = spawn(
        app(
            "hydra/launcher=exp_local",
            "hydra.launcher.workers=2",
            "+x=range(0,2)",
            "+do=[spin,sleep]",
            f"+hydra.launcher.env.EXP_TEST_MARK={mark}",
        ),
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert wait_for(lambda: 0 in by_x(tmp_path) and 1 in by_x(tmp_path))
    spinning, child = by_x(tmp_path)[0]["pid"], by_x(tmp_path)[0]["child"]
    time.sleep(1)  # deep in sum(): no Python code of the worker's can run now
    assert alive(spinning) and alive(child)
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    assert wait_for(lambda: not marked_processes(mark), timeout=5), marked_processes(mark)
    assert not alive(spinning) and not alive(child)


def test_a_jobs_detached_child_ends_when_the_job_ends(tmp_path, app):
    done = run(app("hydra/launcher=exp_local", "hydra.launcher.workers=1", "+x=range(0,3)", "+do=[detach,ok,ok]"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = by_x(tmp_path)
    assert jobs[1]["children_alive"] == [] and jobs[2]["children_alive"] == []  # gone before the next job began
    assert not alive(jobs[0]["child"])
    assert "job #0 left 1 processes running: killed" in done.stdout + done.stderr


def test_failures_name_their_real_cause_and_the_worker_survives_exceptions(tmp_path, app):
    done = run(
        app(
            "hydra/sweeper=exp_grid",
            "hydra/launcher=exp_local",
            "hydra.launcher.workers=1",
            "+x=range(0,7)",
            "+do=[interrupt,exit,ok,sigterm,ok,unset,ok]",
        ),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {r["x"]: r for r in csv_rows(tmp_path / "sweep" / "exp_results.csv")}
    statuses = ["failed", "failed", "completed", "failed", "completed", "failed", "completed"]
    assert [rows[str(x)]["exp.status"] for x in range(7)] == statuses
    assert rows["0"]["exp.error"] == "RuntimeError: the job raised KeyboardInterrupt"
    assert rows["1"]["exp.error"] == "RuntimeError: the job raised SystemExit(3)"
    assert rows["3"]["exp.error"] == "RuntimeError: the worker process died (killed by signal 15 (SIGTERM))"
    jobs = by_x(tmp_path)
    assert jobs[0]["pid"] == jobs[1]["pid"] == jobs[2]["pid"] == jobs[3]["pid"] != jobs[4]["pid"]
    assert rows["5"]["exp.error"] == "RuntimeError: Hydra failed around the job: KeyError: 'EXP_CONFIG_ID'"
    assert jobs[4]["pid"] == jobs[5]["pid"] == jobs[6]["pid"]  # the worker survived Hydra's error


def test_a_jobs_working_directory_environment_signal_handlers_and_path_do_not_reach_the_next_job(tmp_path, app):
    done = run(
        app(
            "hydra/launcher=exp_local",
            "hydra.launcher.workers=1",
            "+hydra.launcher.env.EXP_TEST_LEAK=0",
            "+x=range(0,3)",
            "+do=[leak,ok,ok]",
        ),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = by_x(tmp_path)
    assert jobs[0]["pid"] == jobs[1]["pid"] == jobs[2]["pid"]  # one worker ran all three
    for x in (1, 2):
        assert jobs[x]["cwd"] == str(tmp_path) and jobs[x]["env"] == jobs[0]["env"]
        assert jobs[x]["sigterm"] == jobs[0]["sigterm"] and not jobs[x]["leaked_path"]


def test_far_too_many_workers_are_capped_and_never_more_than_jobs(tmp_path, app, mark):
    done = run(
        app(
            "hydra/launcher=exp_local",
            "hydra.launcher.workers=1000",
            "+x=range(0,4)",
            "+do=[ok,ok,ok,ok]",
            f"+hydra.launcher.env.EXP_TEST_MARK={mark}",
        ),
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert output.count("hydra.launcher.workers=1000 is far above this machine's") == 1
    started = [int(n) for n in re.findall(r"exp_local: starting (\d+) workers?:", output)]
    assert sum(started) == 4 and len(by_x(tmp_path)) == 4
    assert not marked_processes(mark)


def test_sigterm_while_workers_start_is_quiet_and_leaves_nothing(tmp_path, app, spawn, mark):
    driver = spawn(
        app(
            "hydra/launcher=exp_local",
            "hydra.launcher.workers=1000",
            "+x=range(0,16)",
            "+do=[" + ",".join(["sleep"] * 16) + "]",
            f"+hydra.launcher.env.EXP_TEST_MARK={mark}",
        ),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert wait_for(lambda: len(marked_processes(mark)) >= 8)  # the workers are starting
    driver.send_signal(signal.SIGTERM)
    output = driver.communicate(timeout=60)[0]
    assert wait_for(lambda: not marked_processes(mark), timeout=10), marked_processes(mark)
    assert "Traceback" not in output and "Error" not in output, output[-3000:]


def test_only_the_real_launchers_are_listed_as_plugins(tmp_path):
    done = run([sys.executable, str(APPS / "task_app.py"), "--info", "plugins"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ExpLocalLauncher" in done.stdout and "ExpSlurmLauncher" in done.stdout
    assert "EngineLauncher" not in done.stdout


def test_workers_that_cannot_start_fail_the_jobs_instead_of_restarting_forever(tmp_path, app, mark):
    done = run(
        app(
            "hydra/launcher=exp_local",
            "hydra.launcher.workers=2",
            "+x=range(0,3)",
            "+do=[ok,ok,ok]",
            "+hydra.launcher.env.PYTHONHOME=/nonexistent",
            f"+hydra.launcher.env.EXP_TEST_MARK={mark}",
        ),
        cwd=tmp_path,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert "no exp_local worker could start (worker" in output and "ended before it was ready, exit status 1)" in output
    assert len(re.findall(r"exp_local: starting (\d+) workers?:", output)) == 1  # not started over and over
    assert not by_x(tmp_path) and not marked_processes(mark)


def test_a_job_whose_config_hydra_cannot_compose_fails_alone_and_the_worker_stays(tmp_path):
    """``run.seed`` is an int in the app's config, so ``++run.seed.deep=1`` cannot be applied: Hydra refuses it
    in the worker, which must report that job as failed, not die as if the job had crashed it."""
    sweep = tmp_path / "sweep"
    done = run(
        [
            sys.executable,
            str(APPS / "keys_app.py"),
            "-m",
            "hydra/sweeper=exp_grid",
            "run.seed.deep=choice(1,2)",
            "x=5,6",
            "hydra/launcher=exp_local",
            "hydra.launcher.workers=1",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 1 and "every job failed" in done.stderr
    rows = csv_rows(sweep / "exp_results.csv")
    assert len(rows) == 4 and all(
        "Hydra cannot compose the job's config: Could not override 'run.seed.deep'" in r["exp.error"] for r in rows
    ), rows
    assert done.stdout.count("starting 1 worker") == 1  # never restarted: the worker survived every refused job
