"""Our sweepers on a real SLURM cluster (tests/local_slurm.py), through Hydra's own submitit_slurm launcher."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Tuple

import pytest
from conftest import APPS, csv_rows, run

SUBMITIT = [
    "hydra/launcher=submitit_slurm",
    "hydra.launcher.partition=debug",
    "hydra.launcher.timeout_min=5",
    "hydra.launcher.cpus_per_task=1",
]


def records(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_exp_grid_with_submitit_slurm_runs_every_job_on_slurm(tmp_path, hydra_app, slurm):
    record = tmp_path / "record.jsonl"
    done = hydra_app(
        "hydra/sweeper=exp_grid", *SUBMITIT, "+x=range(0,4)", "+y=choice(a,b)", "+behave.fail_if=3", f"+behave.record={record}", timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = records(record)
    assert sorted((j["config"]["x"], j["config"]["y"]) for j in jobs) == [(x, y) for x in range(4) for y in "ab"]
    assert len({j["env"]["SLURM_JOB_ID"] for j in jobs}) == 8 and len({j["env"]["SLURM_ARRAY_JOB_ID"] for j in jobs}) == 1
    rows = csv_rows(tmp_path / "sweep" / "exp_results.csv")
    assert sorted(int(r["exp.job_num"]) for r in rows) == list(range(8))
    assert {(r["x"], r["exp.status"]) for r in rows} == {(str(x), "failed" if x == 3 else "completed") for x in range(4)}
    assert {r["exp.error"] for r in rows if r["exp.status"] == "failed"} == {"ValueError: boom at x=3"}
    assert slurm.jobs() == []


def test_exp_gopt_with_submitit_slurm_in_batches(tmp_path, hydra_app, slurm):
    record = tmp_path / "record.jsonl"
    done = hydra_app(
        "hydra/sweeper=exp_gopt",
        *SUBMITIT,
        "+x=interval(-2.0,2.0)",
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_initial_points=4",
        f"+behave.record={record}",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "batches" in done.stdout + done.stderr  # the one-line notice: no asynchronous interface here
    rows = csv_rows(tmp_path / "sweep" / "opt_configurations.csv")
    assert len(rows) == 6 and all(r["exp.status"] == "completed" for r in rows)
    assert all(float(r["exp.evaluation"]) == float(r["x"]) for r in rows)  # the value each job returned
    jobs = records(record)
    assert sorted(j["config"]["x"] for j in jobs) == sorted(float(r["x"]) for r in rows)
    assert len({j["env"]["SLURM_ARRAY_JOB_ID"] for j in jobs}) == 3  # three arrays of two
    assert slurm.jobs() == []


def most_at_once(jobs: list) -> int:
    """The most jobs that ran at one moment (each job's start is such a moment)."""
    return max(sum(1 for o in jobs if o["started"] <= j["started"] < o["ended"]) for j in jobs)


@pytest.mark.parametrize("launcher", ["submitit_slurm", "exp_slurm"])
def test_one_gpu_per_job_comes_from_slurm(tmp_path, hydra_app, slurm, launcher):
    launch = SUBMITIT if launcher == "submitit_slurm" else EXP_SLURM  # one CPU per job
    free = hydra_app(
        "hydra/sweeper=exp_grid",
        *launch,
        "+x=range(0,3)",
        "+behave.sleep=4",
        f"+behave.record={tmp_path / 'free.jsonl'}",
        f"hydra.sweep.dir={tmp_path / 'free'}",
        timeout=240,
    )
    assert free.returncode == 0, free.stderr[-3000:]
    assert most_at_once(records(tmp_path / "free.jsonl")) == 3  # the node's CPUs run all three jobs at once
    record = tmp_path / "record.jsonl"
    done = hydra_app(
        "hydra/sweeper=exp_grid",
        *launch,
        "hydra.launcher.gres=gpu:1",
        "+x=range(0,3)",
        "+behave.sleep=4",
        f"+behave.record={record}",
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = records(record)
    assert len(jobs) == 3 and {j["env"]["CUDA_VISIBLE_DEVICES"] for j in jobs} <= {"0", "1"}
    assert most_at_once(jobs) == 2  # two GPUs: two jobs at once, never three
    overlapping = [(a, b) for i, a in enumerate(jobs) for b in jobs[i + 1 :] if a["started"] < b["ended"] and b["started"] < a["ended"]]
    for a, b in overlapping:  # never two jobs on one GPU at the same moment
        assert a["env"]["CUDA_VISIBLE_DEVICES"] != b["env"]["CUDA_VISIBLE_DEVICES"]


# -- exp_slurm: our launcher, with the asynchronous interface ----------------------------------------

EXP_SLURM = [
    "hydra/launcher=exp_slurm",
    "hydra.launcher.partition=debug",
    "hydra.launcher.timeout_min=5",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.poll_interval_s=0.5",
]


def start_driver(spawn, tmp_path: Path, *overrides: str) -> Tuple[subprocess.Popen, Path]:
    output = tmp_path / "driver.log"
    process = spawn(
        [sys.executable, str(APPS / "task_app.py"), "-m", *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path,
        stdout=output.open("w"),
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    return process, output


def wait_for(condition, timeout: float = 60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def running(slurm) -> list:
    done = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i"], capture_output=True, text=True, env=os.environ)
    return done.stdout.split()


def test_exp_slurm_raise_exit_scancel_and_out_of_memory_each_come_back_failed(tmp_path, slurm, spawn):
    record = tmp_path / "record.jsonl"
    # x=5 holds 600 MB against a 300 MB request: the local cluster's slurmd kills it (OverMemoryKill)
    driver, output = start_driver(
        spawn,
        tmp_path,
        "hydra/sweeper=exp_grid",
        *EXP_SLURM,
        "hydra.launcher.array_parallelism=2",
        "hydra.launcher.mem_per_cpu=300",
        "+x=range(0,6)",
        "+behave.fail_if=1",
        "+behave.exit_if=2",
        "+behave.eat_if=5",
        "+behave.sleeps=[0,0,0,120,0,0]",
        f"+behave.record={record}",
    )
    line = wait_for(lambda: re.search(r"job #3 submitted as SLURM job (\d+)", output.read_text()))
    victim = line.group(1)
    wait_for(lambda: victim in running(slurm))
    subprocess.run(["scancel", victim], check=True, env=os.environ)
    assert driver.wait(timeout=90) == 0, output.read_text()[-3000:]
    assert "keeping 2 jobs in flight" in output.read_text()
    rows = {int(r["x"]): r for r in csv_rows(tmp_path / "sweep" / "exp_results.csv")}
    assert [rows[x]["exp.status"] for x in range(6)] == ["completed", "failed", "failed", "failed", "completed", "failed"]
    assert rows[1]["exp.error"] == "ValueError: boom at x=1"
    for x, state in ((2, "FAILED"), (3, "CANCELLED"), (5, "FAILED")):  # no result: SLURM's state and the job's log files
        assert f"ended ({state})" in rows[x]["exp.error"] and " without a result; log: " in rows[x]["exp.error"], rows[x]["exp.error"]
        assert Path(rows[x]["exp.error"].split("log: ")[1].split(" and ")[0]).exists()
    assert "out of memory" in rows[5]["exp.error"] and "out of memory" not in rows[2]["exp.error"] + rows[3]["exp.error"]
    assert sorted(j["config"]["x"] for j in records(record)) == [0, 1, 2, 4, 5]  # x=2 exits, x=5 is killed after recording
    assert slurm.jobs() == []


def test_exp_gopt_keeps_the_cluster_busy_with_distinct_trials(tmp_path, slurm):
    record = tmp_path / "record.jsonl"
    # trial #0 is slow: in batches of 3, trials #3 and later would wait for it; kept busy, they run beside it
    done = run(
        [
            sys.executable,
            str(APPS / "job_app.py"),
            "-m",
            "hydra/sweeper=exp_gopt",
            *EXP_SLURM,
            "hydra.launcher.array_parallelism=3",
            "+x=interval(-2.0,2.0)",
            "hydra.sweeper.n_trials=7",
            "hydra.sweeper.n_initial_points=3",
            "+by_job.sleeps={0:20}",
            f"+by_job.record={record}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "keeping 3 trials in flight" in done.stdout + done.stderr
    rows = csv_rows(tmp_path / "sweep" / "opt_configurations.csv")
    assert len(rows) == 7 and all(r["exp.status"] == "completed" for r in rows)
    jobs = {j["num"]: j for j in records(record)}
    assert sorted(jobs) == list(range(7)) and len({j["slurm_job"] for j in jobs.values()}) == 7
    assert len({j["x"] for j in jobs.values()}) == 7
    assert all(jobs[n]["started"] < jobs[0]["ended"] for n in range(3, 7))  # the cluster did not wait for #0


def test_exp_slurm_batch_launch_is_one_job_array(tmp_path, hydra_app, slurm):
    record = tmp_path / "record.jsonl"
    done = hydra_app(*EXP_SLURM, "+x=range(0,3)", f"+behave.record={record}", timeout=240)  # Hydra's basic sweeper
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = records(record)
    assert sorted(j["config"]["x"] for j in jobs) == [0, 1, 2]
    assert len({j["env"]["SLURM_ARRAY_JOB_ID"] for j in jobs}) == 1 and len({j["env"]["SLURM_JOB_ID"] for j in jobs}) == 3
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.name.isdigit()) == ["0", "1", "2"]


def test_ctrl_c_cancels_every_submitted_job_and_the_sweep_resumes(tmp_path, slurm, spawn):
    args = ["hydra/sweeper=exp_grid", *EXP_SLURM, "hydra.launcher.array_parallelism=2", "+x=range(0,4)", "+behave.sleeps=[120,120,0,0]"]
    wait_for(lambda: slurm.jobs() == [], timeout=60)  # an earlier test's jobs, still ending, are not this sweep's
    driver, output = start_driver(spawn, tmp_path, *args)
    wait_for(lambda: len(running(slurm)) == 2 and "submitted as SLURM job" in output.read_text())
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=30) == 1
    assert "hydra.sweeper.resume=true" in output.read_text()
    wait_for(lambda: slurm.jobs() == [], timeout=30)  # cancelled on the cluster, not left running
    again = subprocess.run(
        [
            sys.executable,
            str(APPS / "task_app.py"),
            "-m",
            *args[:-1],
            "+behave.sleeps=[0,0,0,0]",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            "hydra.sweeper.resume=true",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    rows = csv_rows(tmp_path / "sweep" / "exp_results.csv")
    assert sorted(int(r["x"]) for r in rows if r["exp.status"] == "completed") == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "timeout_min,max_num_timeout,requeued",
    [
        (20, 0, True),  # preempted: requeued whatever max_num_timeout says
        (1, 1, True),  # timed out, one retry allowed
        (1, 0, False),  # timed out, no retry left: a failed job with submitit's reason
    ],
    ids=["preempted", "timed-out-retried", "timed-out-too-often"],
)
def test_a_preempted_or_timed_out_job_is_requeued_up_to_max_num_timeout(tmp_path, slurm, spawn, timeout_min, max_num_timeout, requeued):
    record = tmp_path / "record.jsonl"
    # SLURM sends USR2 before the time limit (signal_delay_s) and on preemption; submitit counts it as a
    # timeout when the job has run for more than its time limit less 10 minutes (or 80% of it): with
    # 20 minutes, a signal in the first seconds is a preemption; with 1 minute, always a timeout
    driver, output = start_driver(
        spawn,
        tmp_path,
        "hydra/sweeper=exp_grid",
        *EXP_SLURM,
        f"hydra.launcher.timeout_min={timeout_min}",
        "hydra.launcher.signal_delay_s=5",
        f"hydra.launcher.max_num_timeout={max_num_timeout}",
        "+x=range(0,2)",
        "+behave.sleep=6",
        f"+behave.record={record}",
    )
    victim = wait_for(lambda: re.search(r"job #0 submitted as SLURM job (\d+)", output.read_text())).group(1)
    wait_for(lambda: (tmp_path / "sweep" / "0").exists())  # the job is inside Hydra: submitit's handlers are set
    signalled = time.time()
    subprocess.run(["scancel", "--signal=USR2", victim], check=True, env=os.environ)
    if requeued:
        state = ["squeue", "-h", "-j", victim, "-o", "%T"]
        wait_for(lambda: subprocess.run(state, capture_output=True, text=True, env=os.environ).stdout.strip() == "PENDING")
        # slurmctld holds a requeued job for about 2 minutes; an administrator may release it at once, but
        # slurmd refuses a run whose credential dates from the second its old run was revoked in
        # ("Job credential revoked"), so not within that second
        time.sleep(2)
        subprocess.run(["scontrol", "update", f"JobId={victim}", "StartTime=now"], check=True, env=os.environ)
    driver.wait(timeout=120)
    rows = {r["x"]: r for r in csv_rows(tmp_path / "sweep" / "exp_results.csv")}
    assert rows["1"]["exp.status"] == "completed", output.read_text()[-3000:]
    if requeued:
        assert driver.returncode == 0 and rows["0"]["exp.status"] == "completed", output.read_text()[-3000:]
        first = next(j for j in records(record) if j["config"]["x"] == 0)
        assert first["env"]["SLURM_JOB_ID"] == victim and first["env"]["SLURM_RESTART_COUNT"] == "1"
        assert first["started"] > signalled  # the result is the requeued run's
    else:
        assert rows["0"]["exp.status"] == "failed" and "timed-out too many times" in rows["0"]["exp.error"]
        assert [j["config"]["x"] for j in records(record)] == [1]  # job #0 never finished, nor ran again


def test_exp_slurm_without_sbatch_or_with_a_bad_option_is_a_clear_error(tmp_path):
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # no SLURM commands
    done = subprocess.run(
        [sys.executable, str(APPS / "task_app.py"), "-m", "hydra/launcher=exp_slurm", "+x=0,1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1 and "no sbatch on this machine's PATH" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "multirun").exists() or not list((tmp_path / "multirun").rglob("received.json"))
    if shutil.which("sbatch"):
        done = run(
            [sys.executable, str(APPS / "task_app.py"), "-m", "hydra/launcher=exp_slurm", "+x=0,1", "hydra.launcher.array_parallelism=0"],
            cwd=tmp_path,
        )
        assert done.returncode == 1 and "hydra.launcher.array_parallelism must be a whole number >= 1, got 0" in done.stderr
        done = run(
            [sys.executable, str(APPS / "task_app.py"), "-m", "hydra/launcher=exp_slurm", "+x=0,1", "hydra.launcher.timeout_min=1"],
            cwd=tmp_path,
        )
        assert done.returncode == 1 and "signal_delay_s=120 must be less than timeout_min x 60 = 60 s" in done.stderr


@pytest.mark.parametrize(
    "state, log_tail, oom",
    [
        ("OUT_OF_MEMORY", "", True),  # the cgroup OOM killer: SLURM's state says it, the log may not
        ("FAILED", "slurmstepd: error: Job 7 exceeded memory limit (614400 > 307200), being killed", True),
        ("FAILED", "Detected 1 oom_kill event in StepId=7.batch", True),
        ("FAILED", "ValueError: bad x", False),
        ("CANCELLED", "", False),
    ],
)
def test_a_job_killed_for_its_memory_is_named_so_from_its_state_or_its_log(tmp_path, state, log_tail, oom):
    from hydra_plugins.exp_launcher._slurm import out_of_memory

    stderr = tmp_path / "7_0_log.err"
    stderr.write_text("x" * 10000 + "\n" + log_tail + "\n")
    assert ("raise hydra.launcher.mem_gb" in out_of_memory(state, stderr)) is oom
    assert out_of_memory(state, tmp_path / "missing.err") == ("" if state != "OUT_OF_MEMORY" else out_of_memory(state, stderr))


ASHA_LAUNCHERS = {
    "exp_slurm": EXP_SLURM,
    "submitit_slurm": SUBMITIT,
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"],  # submitit without SLURM
}


@pytest.mark.parametrize("launcher", list(ASHA_LAUNCHERS))
def test_asha_stops_trials_at_rungs_on_slurm(tmp_path, request, launcher):
    """The report channel across SLURM jobs: exp_slurm (asynchronous) and Hydra's submitit_slurm (the sweep
    decides while it waits in Launcher.launch); and across the processes of submitit's LocalExecutor
    (submitit_local), which runs in every CI. The worse configurations wait until the best has passed the
    first rung: ASHA stops no one when the trials reach a rung worst first, which the cluster's start order
    alone could make happen (a head start of 1 s per q was not always enough on a loaded machine)."""
    slurm = request.getfixturevalue("slurm") if launcher != "submitit_local" else None  # skips where no local SLURM runs
    log = tmp_path / "epochs.jsonl"
    launch = ASHA_LAUNCHERS[launcher]
    done = run(
        [
            sys.executable,
            str(APPS / "curve_app.py"),
            "-m",
            "hydra/sweeper=exp_grid",
            *launch,
            "hydra.sweeper.pruner=asha",
            "hydra.sweeper.max_resource=9",
            "+epochs=9",
            "+q=range(0,4)",
            "+behave.sleep=0.2",
            "+behave.after_best=true",
            f"+behave.log={log}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {r["q"]: r for r in csv_rows(tmp_path / "sweep" / "exp_results.csv")}
    epochs = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        epochs[entry["q"]] = max(epochs.get(entry["q"], 0), entry["epoch"])
    assert rows["0"]["exp.status"] == "completed" and epochs[0.0] == 9  # the best is never stopped
    pruned = [q for q, r in rows.items() if r["exp.status"] == "pruned"]
    assert pruned, rows
    for q in pruned:
        assert epochs[float(q)] == int(rows[q]["exp.steps"]) and epochs[float(q)] in (1, 3)
    if slurm is not None:
        wait_for(lambda: slurm.jobs() == [], timeout=30)  # ended on the cluster (shown a moment while completing), none left


def test_a_job_whose_driver_was_killed_goes_on_after_the_decision_timeout(tmp_path, slurm, spawn):
    """A SLURM job outlives its killed driver: at its rungs nobody decides, and with EXP_DECISION_TIMEOUT_S=2
    in its environment it goes on training after 2 s at each, not after ten minutes."""
    from test_early_stopping import ASHA_9

    log, go = tmp_path / "epochs.jsonl", tmp_path / "go"
    driver = spawn(
        [
            sys.executable,
            str(APPS / "curve_app.py"),
            "-m",
            "hydra/sweeper=exp_grid",
            *EXP_SLURM,
            *ASHA_9,
            "+q=0",
            f"+behave.log={log}",
            f"+behave.hold={go}",  # the first epoch waits for the driver's end
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=tmp_path,
        env=dict(os.environ, EXP_DECISION_TIMEOUT_S="2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: running(slurm))
    driver.kill()
    driver.wait()
    go.touch()
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 9, timeout=120)  # every epoch trained
    wait_for(lambda: slurm.jobs() == [], timeout=60)
    said = "".join(p.read_text(errors="replace") for p in (tmp_path / "sweep").rglob("*.log"))
    assert said.count("no decision from the sweep at rung ") == 2 and "within 2 s: going on" in said, said[-3000:]
