"""exp_compat.runnable: EXP's run(**kwargs) modules as Hydra apps, run as users type them."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from conftest import APPS, csv_rows

ROOT = Path(__file__).resolve().parent.parent
GRID = '[x]\ntype = "range"\nbounds = [0, 3]\ndtype = "int"\n[model.lr]\ntype = "list"\nvalue = [0.1, 0.01]\n'


def run_app(tmp_path: Path, *overrides: str) -> list:
    record = tmp_path / "record.jsonl"
    done = subprocess.run(
        [sys.executable, str(APPS / "exp_runnable.py"), "-m", *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=dict(os.environ, EXP_TEST_RECORD=str(record)),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_grid_jobs_receive_their_configuration_as_keyword_arguments(tmp_path):
    (tmp_path / "grid.conf").write_text(GRID)
    received = run_app(tmp_path, "hydra/sweeper=exp_grid", "+exp.params=grid.conf", "hydra.sweeper.runs=2")
    planned = {(r["id"], r["run"]): r for r in csv_rows(tmp_path / "sweep" / "exp_params.csv")}
    assert len(received) == 12 and len(planned) == 12  # x in 0, 1, 2 (EXP grids leave out the high end)
    for kwargs in received:  # nested keys as nested dicts; EXP's id and run; no exp.* control key
        assert set(kwargs) == {"x", "model", "id", "run", "pid"} and kwargs["pid"] == 0
        row = planned[(str(kwargs["id"]), str(kwargs["run"]))]
        assert (str(kwargs["x"]), str(kwargs["model"]["lr"])) == (row["x"], row["model.lr"])
    assert sorted(p.name for p in (tmp_path / "sweep" / "0").glob("*.log")) == ["exp_runnable.log"]


def test_quick_start_optimizes_on_exp_local_workers(tmp_path):
    (tmp_path / "basic.conf").write_text('[x]\ntype = "range"\nbounds = [-10, 10]\n')
    received = run_app(
        tmp_path,
        "hydra/sweeper=exp_gopt",
        "+exp.params=basic.conf",
        "hydra.sweeper.n_trials=10",
        "hydra.sweeper.n_initial_points=4",
        "hydra.sweeper.seed=5",
        "hydra/launcher=exp_local",
        "hydra.launcher.workers=2",
    )
    assert sorted(k["id"] for k in received) == list(range(10)) and {k["run"] for k in received} == {1}
    assert {k["pid"] for k in received} == {0, 1}  # EXP's worker id, from the exp_local slot
    rows = csv_rows(tmp_path / "sweep" / "opt_configurations.csv")
    assert all(float(r["exp.evaluation"]) == float(r["x"]) ** 2 for r in rows)  # the return value is the result
    assert min(float(r["exp.evaluation"]) for r in rows) < 2.0


def test_other_sweepers_number_the_jobs_and_a_direct_call_is_a_plain_call(tmp_path):
    received = run_app(tmp_path, "+x=2,3")  # Hydra's basic sweeper
    assert sorted((k["x"], k["id"], k["run"], k["pid"]) for k in received) == [(2, 0, 1, 0), (3, 1, 1, 0)]
    sys.path.insert(0, str(APPS))
    try:
        import exp_runnable
    finally:
        sys.path.remove(str(APPS))
    os.environ["EXP_TEST_RECORD"] = str(tmp_path / "direct.jsonl")
    try:
        assert exp_runnable.run(x=4, id=7) == 16
    finally:
        del os.environ["EXP_TEST_RECORD"]
    assert json.loads((tmp_path / "direct.jsonl").read_text()) == {"x": 4, "id": 7}


def readme_block(after: str) -> list:
    """The command lines of the README's first bash block that follows the line ``after``, so that the commands
    tested are the ones a newcomer copies."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[text.index(after) :].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_readme_quick_start_commands_work_as_written(tmp_path):
    """Each command of the README's short tour that runs on the bundled examples, from the repository root, as a
    user types it."""
    commands = readme_block("## A short tour")
    assert [c.split()[0] for c in commands] == ["python", "python", "python", "exp-compat"]
    results = {}
    for i, command in enumerate(commands):
        argv = shlex.split(command)
        if argv[0] == "python":
            argv = [sys.executable, *argv[1:], f"hydra.sweep.dir={tmp_path / str(i)}"]
        else:
            argv = [str(Path(sys.executable).parent / argv[0]), *argv[1:]]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (command, done.stderr[-3000:])
        results[i] = done
    optimized = csv_rows(tmp_path / "0" / "opt_configurations.csv")  # EXP's quick start: x ** 2 on [-10, 10]
    assert len(optimized) == 20 and min(float(r["exp.evaluation"]) for r in optimized) < 0.1
    assert (tmp_path / "0" / "0" / "runnable.log").exists()
    grid = csv_rows(tmp_path / "1" / "exp_results.csv")  # 24 configurations, twice
    assert len(grid) == 48 and sorted({(r["exp.id"], r["exp.run"]) for r in grid}) == sorted(
        (str(i), str(r)) for i in range(24) for r in (1, 2)
    )
    from_syntax = csv_rows(tmp_path / "2" / "opt_configurations.csv")
    assert len(from_syntax) == 20 and all(-10 <= float(r["x"]) <= 10 for r in from_syntax)
    assert "grid (EXP runner rules): 24 configurations" in results[3].stdout


def test_the_digits_example_tunes_a_real_model(tmp_path):
    root = ROOT
    done = subprocess.run(
        [
            sys.executable,
            "examples/digits/train.py",
            "-m",
            "hydra/sweeper=exp_gopt",
            "+exp.params=examples/digits/space.conf",
            "hydra.sweeper.n_trials=6",
            "hydra.sweeper.plot=true",
            "hydra.sweeper.n_initial_points=4",
            "hydra/launcher=exp_local",
            "hydra.launcher.workers=2",
            "+max_iter=10",
            "hydra.sweeper.pruner=asha",  # a decision after 5 iterations of 10
            "hydra.sweeper.min_resource=5",
            "hydra.sweeper.max_resource=10",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(tmp_path / "sweep" / "opt_configurations.csv")
    assert len(rows) == 6 and {r["exp.status"] for r in rows} <= {"completed", "pruned"}
    assert all((r["exp.status"], r["exp.steps"]) in (("completed", "10"), ("pruned", "5")) for r in rows)
    curves = csv_rows(tmp_path / "sweep" / "opt_curves.csv")  # a report every 5 iterations
    assert sorted(int(c["exp.step"]) for c in curves) == sorted(s for r in rows for s in range(5, int(r["exp.steps"]) + 1, 5))
    errors = [float(r["exp.evaluation"]) for r in rows]
    assert all(0.0 <= e <= 1.0 for e in errors) and min(errors) < 0.3  # error rates; digits is learnable
    assert all(r["max_depth"].isdigit() and 2 <= int(r["max_depth"]) <= 8 for r in rows)  # an integer dimension
    assert {r["l2_regularization"] for r in rows} <= {"0.0", "0.1", "1.0"}
    assert (tmp_path / "sweep" / "opt_convergence.png").stat().st_size > 0


def test_the_torch_example_trains_on_the_cpu_without_a_gpu(tmp_path):
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [
            sys.executable,
            "examples/torch/train.py",
            "-m",
            "hydra/sweeper=exp_gopt",
            "+exp.params=examples/torch/space.conf",
            "hydra.sweeper.n_trials=4",
            "hydra.sweeper.n_initial_points=4",
            "hydra/launcher=exp_local",
            "hydra.launcher.workers=2",
            "+epochs=10",
            "hydra.sweeper.pruner=asha",
            "hydra.sweeper.max_resource=10",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(tmp_path / "sweep" / "opt_configurations.csv")
    errors = [float(r["exp.evaluation"]) for r in rows]
    assert len(rows) == 4 and all(0.0 <= e <= 1.0 for e in errors) and min(errors) < 0.5  # 10 classes: chance is 0.9
    assert all((r["exp.status"] == "completed") == (r["exp.steps"] == "10") and r["exp.steps"] in ("1", "3", "9", "10") for r in rows)
    assert len(csv_rows(tmp_path / "sweep" / "opt_curves.csv")) == sum(int(r["exp.steps"]) for r in rows)  # a report per epoch
    assert {r["optimizer"] for r in rows} <= {"adam", "sgd"} and all(16 <= int(r["hidden"]) <= 256 for r in rows)
    devices = {(tmp_path / "sweep" / r["exp.job_num"] / "train.log").read_text().split("training on ")[1].split()[0] for r in rows}
    assert devices == {"cpu"}
