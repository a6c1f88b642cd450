"""exp-compat run / gopt: EXP's commands and options, run through the console script on plain EXP modules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml
from conftest import csv_rows

MODULE = """
import json, os

def run(x=1, **kwargs):
    with open(os.path.join(os.path.dirname(__file__), "calls.jsonl"), "a") as handle:
        handle.write(json.dumps({"x": x, **kwargs}) + "\\n")
    if x == 0 and os.environ.get("EXP_FAIL_AT_0"):
        raise ValueError("x must not be 0")
    return x ** 2
"""
GRID = '[x]\ntype = "range"\nbounds = [-2, 3]\ndtype = "int"\n'
BASIC = '[x]\ntype = "range"\nbounds = [-10, 10]\n'


def setup(tmp_path: Path, space: str = GRID) -> None:
    (tmp_path / "runnable.py").write_text(MODULE)  # a plain EXP module: no decorator, not a package
    (tmp_path / "space.conf").write_text(space)


def calls(tmp_path: Path) -> list:
    path = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def sweeper(tmp_path: Path, out: Path = None) -> dict:
    return yaml.safe_load(((out or tmp_path) / "multirun.yaml").read_text())["hydra"]


def test_run_writes_exps_files_for_every_configuration(tmp_path, exp_compat):
    setup(tmp_path)
    done = exp_compat("run", "-p", "space.conf", "-m", "runnable.py")
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(c["x"] for c in calls(tmp_path)) == [-2, -1, 0, 1, 2]
    assert [r["x"] for r in csv_rows(tmp_path / "exp_params.csv")] == ["-2", "-1", "0", "1", "2"]
    rows = csv_rows(tmp_path / "exp_results.csv")
    assert sorted((int(r["x"]), int(r["exp.result"])) for r in rows) == [(x, x * x) for x in range(-2, 3)]
    assert (tmp_path / "exp" / "0" / "runnable.log").exists()  # Hydra's job directories under <name>/
    assert not (tmp_path / "exp.log").exists()  # no errors, no error log


def test_run_options_runs_name_workers_and_config_ids(tmp_path, exp_compat):
    setup(tmp_path)
    done = exp_compat("run", "-p", "space.conf", "-m", "runnable.py", "-r", "2", "--name", "mine", "-w", "2", "-c", "1", "-c", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    received = calls(tmp_path)
    assert sorted((c["id"], c["run"]) for c in received) == [(1, 1), (1, 2), (3, 1), (3, 2)]
    assert sorted(c["x"] for c in received) == [-1, -1, 1, 1]
    assert {c["pid"] for c in received} == {0, 1}  # two exp_local workers, EXP's pid
    assert sweeper(tmp_path)["launcher"]["workers"] == 2
    assert len(csv_rows(tmp_path / "mine_results.csv")) == 4 and (tmp_path / "mine_params.csv").exists()


def test_run_cancel_stops_after_the_first_failure_and_logs_it(tmp_path, exp_compat, monkeypatch):
    setup(tmp_path)
    monkeypatch.setenv("EXP_FAIL_AT_0", "1")
    done = exp_compat("run", "-p", "space.conf", "-m", "runnable.py", "--cancel")
    assert done.returncode == 1
    ran = {r["x"]: r["exp.status"] for r in csv_rows(tmp_path / "exp_results.csv")}
    # the grid in order on one worker; x=1 may have been handed to the worker ahead and started as x=0 failed
    assert {"-2": "completed", "-1": "completed", "0": "failed"}.items() <= ran.items() and set(ran) <= {"-2", "-1", "0", "1"}
    assert {c["x"] for c in calls(tmp_path)} <= {-2, -1, 0, 1}  # nothing launched after the failure was seen
    assert "ValueError: x must not be 0" in (tmp_path / "exp.log").read_text()  # EXP's <name>.log of errors
    done = exp_compat("run", "-p", "space.conf", "-m", "runnable.py", "--name", "all")
    assert done.returncode == 0 and len(csv_rows(tmp_path / "all_results.csv")) == 5  # without --cancel it goes on


def test_gopt_quick_start_finds_a_solution_very_close_to_zero(tmp_path, exp_compat):
    setup(tmp_path, BASIC)
    done = exp_compat(
        "gopt", "--params", "space.conf", "--module", "runnable.py", "--n", "20", "--workers", "4", "--", "hydra.sweeper.seed=1"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(tmp_path / "opt_configurations.csv")
    assert len(rows) == 20 and min(float(r["exp.evaluation"]) for r in rows) < 0.01
    workers = min(4, os.cpu_count())  # EXP's rule: at most one worker per CPU core
    assert sweeper(tmp_path)["sweeper"]["mode"] == "async" and f"keeping {workers} trials in flight" in done.stdout + done.stderr


def test_gopt_options_reach_the_optimizer_and_the_files(tmp_path, exp_compat):
    setup(tmp_path, BASIC)
    out = tmp_path / "results"
    done = exp_compat(
        "gopt",
        "-p",
        "space.conf",
        "-m",
        "runnable.py",
        "-n",
        "12",
        "--name",
        "lcb",
        "-s",
        "rf",
        "-a",
        "LCB",
        "--kappa",
        "3.5",
        "--xi",
        "0.2",
        "--plot",
        "-o",
        str(out),
        "--sync",
        "-w",
        "2",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    settings = sweeper(tmp_path, out)["sweeper"]
    assert (settings["surrogate"], settings["acquisition"], settings["kappa"], settings["xi"], settings["mode"]) == (
        "RF",
        "LCB",
        3.5,
        0.2,
        "sync",
    )
    assert len(csv_rows(out / "lcb_configurations.csv")) == 12
    assert (out / "lcb_convergence.png").stat().st_size > 0 and (out / "lcb_objective.png").exists()
    assert "mode=sync: batches of 2 trials" in done.stdout + done.stderr
    assert not (tmp_path / "lcb_configurations.csv").exists()


def test_gopt_takes_several_objectives_and_constraints_as_hydra_overrides(tmp_path, exp_compat):
    (tmp_path / "two.py").write_text("def run(x=0, **kwargs):\n    return {'near_0': x * x, 'near_4': (x - 4) ** 2, 'at': x}\n")
    (tmp_path / "space.conf").write_text(BASIC)
    done = exp_compat(
        "gopt",
        *("-p", "space.conf", "-m", "two.py", "-n", "12", "-w", "2", "--"),
        "hydra.sweeper.direction=[minimize,minimize]",
        "hydra.sweeper.objective=[near_0,near_4]",
        "+hydra.sweeper.constraints.at='<= 3'",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(tmp_path / "opt_configurations.csv")
    assert len(rows) == 12 and all(r["exp.feasible"] == str(float(r["x"]) <= 3) for r in rows)
    solutions = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())["solutions"]
    feasible = [(float(r["near_0"]), float(r["near_4"]), float(r["x"])) for r in rows if r["exp.feasible"] == "True"]
    front = [p for p in feasible if not any(q[0] <= p[0] and q[1] <= p[1] and q[:2] != p[:2] for q in feasible)]
    assert solutions and sorted(s["params"]["x"] for s in solutions) == sorted(p[2] for p in front)
    assert all(s["params"]["x"] <= 3 for s in solutions)


def test_gpu_without_a_gpu_is_a_clear_error_before_any_job(tmp_path, exp_compat):
    setup(tmp_path)
    done = exp_compat("run", "-p", "space.conf", "-m", "runnable.py", "-g")
    assert done.returncode == 1 and "no NVIDIA GPU found" in done.stdout + done.stderr and calls(tmp_path) == []


def test_a_module_without_run_is_exps_error_and_writes_nothing(tmp_path, exp_compat):
    setup(tmp_path)
    (tmp_path / "norun.py").write_text("x = 1\n")
    done = exp_compat("gopt", "-p", "space.conf", "-m", "norun.py", "-n", "3")
    assert done.returncode == 2 and 'does not contain a "run" method' in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["norun.py", "runnable.py", "space.conf"]
    done = exp_compat("run", "-p", "missing.conf", "-m", "runnable.py")
    assert done.returncode == 2 and "no such file: missing.conf" in done.stderr
    done = exp_compat("run", "-p", "space.conf", "-m", "runnable.py", "-w", "0")
    assert done.returncode == 2 and "must be at least 1" in done.stderr
    for name in ("a/b", "..", "-x"):  # the sweeper's own rule for hydra.sweeper.name, checked before Hydra starts
        done = exp_compat("run", "-p", "space.conf", "-m", "runnable.py", f"--name={name}")
        assert done.returncode == 2 and "it prefixes file names" in done.stderr, (name, done.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["norun.py", "runnable.py", "space.conf"]
