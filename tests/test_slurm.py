"""Our sweepers on a real SLURM cluster (tests/local_slurm.py), through Hydra's own submitit_slurm launcher."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import csv_rows

SUBMITIT = ["hydra/launcher=submitit_slurm", "hydra.launcher.partition=debug", "hydra.launcher.timeout_min=5",
            "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=0"]


def records(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_exp_grid_with_submitit_slurm_runs_every_job_on_slurm(tmp_path, hydra_app, slurm):
    record = tmp_path / "record.jsonl"
    done = hydra_app("hydra/sweeper=exp_grid", *SUBMITIT, "+x=range(0,4)", "+y=choice(a,b)", "+behave.fail_if=3",
                     f"+behave.record={record}", timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = records(record)
    assert sorted((j["config"]["x"], j["config"]["y"]) for j in jobs) == [(x, y) for x in range(4) for y in "ab"]
    assert len({j["env"]["SLURM_JOB_ID"] for j in jobs}) == 8 and len({j["env"]["SLURM_ARRAY_JOB_ID"] for j in jobs}) == 1
    rows = csv_rows(tmp_path / "sweep" / "exp_results.csv")
    assert sorted(int(r["job_num"]) for r in rows) == list(range(8))
    assert {(r["x"], r["status"]) for r in rows} == {(str(x), "failed" if x == 3 else "completed") for x in range(4)}
    assert {r["error"] for r in rows if r["status"] == "failed"} == {"ValueError: boom at x=3"}
    assert slurm.jobs() == []


def test_exp_gopt_with_submitit_slurm_in_batches(tmp_path, hydra_app, slurm):
    record = tmp_path / "record.jsonl"
    done = hydra_app("hydra/sweeper=exp_gopt", *SUBMITIT, "+x=interval(-2.0,2.0)", "hydra.sweeper.n_trials=6",
                     "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_initial_points=4", f"+behave.record={record}", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "batches" in done.stdout + done.stderr  # the one-line notice: no asynchronous interface here
    rows = csv_rows(tmp_path / "sweep" / "opt_configurations.csv")
    assert len(rows) == 6 and all(r["status"] == "completed" for r in rows)
    assert all(float(r["evaluation"]) == float(r["x"]) for r in rows)  # the value each job returned
    jobs = records(record)
    assert sorted(j["config"]["x"] for j in jobs) == sorted(float(r["x"]) for r in rows)
    assert len({j["env"]["SLURM_ARRAY_JOB_ID"] for j in jobs}) == 3  # three arrays of two
    assert slurm.jobs() == []


def test_one_gpu_per_job_comes_from_slurm(tmp_path, hydra_app, slurm):
    record = tmp_path / "record.jsonl"
    done = hydra_app("hydra/sweeper=exp_grid", *SUBMITIT, "hydra.launcher.gres=gpu:1", "+x=range(0,3)",
                     "+behave.sleep=2", f"+behave.record={record}", timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = records(record)
    assert len(jobs) == 3 and {j["env"]["CUDA_VISIBLE_DEVICES"] for j in jobs} <= {"0", "1"}
    for i, a in enumerate(jobs):  # the node has two GPUs: never two jobs on one at the same moment
        for b in jobs[i + 1:]:
            if a["started"] < b["ended"] and b["started"] < a["ended"]:
                assert a["env"]["CUDA_VISIBLE_DEVICES"] != b["env"]["CUDA_VISIBLE_DEVICES"]
