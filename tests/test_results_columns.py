"""The sweep's own CSV columns (``exp.<name>``) never clash with the names a task returns or reports, and files
written before the prefix existed still resume, warm start and replay. Real Hydra multiruns, as a user types them.

The earlier release wrote the same columns in the same order without the prefix; ``as_written_before`` makes
such a file from one of today's, exactly as that release wrote it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from conftest import APPS, csv_rows, run

OWN = ["exp.run", "exp.job_num", "exp.status", "exp.duration_s", "exp.error"]
SPACE = ("hydra/sweeper=exp_gopt", "+x=interval(0,2)", "+y=interval(0,1)", "hydra.sweeper.seed=1")
TWO = ("hydra.sweeper.direction=[minimize,minimize]", "hydra.sweeper.objective=[error,duration_s]", "+form=named")


def app(tmp_path: Path, name: str, *overrides: str, sweep_dir: str = "sweep") -> subprocess.CompletedProcess:
    args = [sys.executable, str(APPS / name), "-m", *overrides, f"hydra.sweep.dir={tmp_path / sweep_dir}"]
    return run(args, cwd=tmp_path, timeout=300)


def as_written_before(path: Path) -> None:
    """Rewrite a CSV of today's with the header of the release before the prefix: the same columns, bare."""
    header, _, rest = path.read_text(encoding="utf-8").partition("\n")
    path.write_text(header.replace("exp.", "") + "\n" + rest, encoding="utf-8")


def executions(record: Path) -> List[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def test_an_objective_named_error_and_metrics_named_like_the_sweeps_columns(tmp_path):
    constraints = [f"+hydra.sweeper.constraints.{name}='>= 0'" for name in ("status", "steps", "job_num", "feasible")]
    done = app(
        tmp_path, "objectives_app.py", *SPACE, "+form=named", "hydra.sweeper.objective=error", "hydra.sweeper.n_trials=5", *constraints
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(tmp_path / "sweep" / "opt_configurations.csv")
    assert list(rows[0]) == ["x", "y", "exp.id", "exp.evaluation", "status", "steps", "job_num", "feasible", "exp.feasible", *OWN]
    assert len(rows) == 5 and all(r["exp.status"] == "completed" and r["exp.feasible"] == "True" for r in rows)
    for r in rows:  # each column holds what its name says: the task's numbers under its names, the sweep's under exp.
        x, y = float(r["x"]), float(r["y"])
        assert float(r["exp.evaluation"]) == x and float(r["status"]) == x + y
        assert (float(r["feasible"]), float(r["steps"]), float(r["job_num"])) == (x, 1 + x, 2 + x)
    assert sorted(int(r["exp.job_num"]) for r in rows) == list(range(5))


@pytest.mark.parametrize("sweeper", ["exp_grid", "exp_gopt"])
def test_parameters_named_like_the_sweeps_columns_are_swept_and_resumed(tmp_path, sweeper):
    # steps, status, error, ... are the sweep's columns under exp.: a parameter may have such a name.
    names = ("steps", "status", "error", "result", "evaluation", "duration_s", "job_num", "feasible")
    space = [f"+{name}=choice(1,2)" if sweeper == "exp_grid" and name == "steps" else f"+{name}=interval(1,2)" for name in names]
    if sweeper == "exp_grid":
        space = [spec.replace("interval(1,2)", "choice(1.5)") for spec in space]
    args = [f"hydra/sweeper={sweeper}", *space, "+x=1", *(["hydra.sweeper.n_trials=2"] if sweeper == "exp_gopt" else [])]
    assert app(tmp_path, "task_app.py", *args).returncode == 0
    done = app(tmp_path, "task_app.py", *args, "hydra.sweeper.resume=true")
    assert done.returncode == 0 and "2 finished jobs kept" in done.stdout, done.stderr[-3000:]
    rows = csv_rows(tmp_path / "sweep" / ("exp_results.csv" if sweeper == "exp_grid" else "opt_configurations.csv"))
    assert len(rows) == 2 and all(r["exp.status"] == "completed" for r in rows)
    assert all(1 <= float(r[name]) <= 2 for r in rows for name in names)


def test_two_objectives_named_error_and_duration_s_resume_and_warm_start(tmp_path):
    record = tmp_path / "executions.jsonl"
    done = app(tmp_path, "objectives_app.py", *SPACE, *TWO, "hydra.sweeper.n_trials=4", f"+record={record}")
    assert done.returncode == 0, done.stderr[-3000:]
    path = tmp_path / "sweep" / "opt_configurations.csv"
    first = csv_rows(path)
    assert list(first[0]) == ["x", "y", "exp.id", "error", "duration_s", *OWN]
    assert all(float(r["error"]) == float(r["x"]) and float(r["exp.duration_s"]) >= 0 for r in first)

    done = app(tmp_path, "objectives_app.py", *SPACE, *TWO, "hydra.sweeper.n_trials=6", f"+record={record}", "hydra.sweeper.resume=true")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(path)
    assert rows[:4] == first and len(rows) == 6 and len(executions(record)) == 6  # kept, not run again

    done = app(
        tmp_path, "objectives_app.py", *SPACE, *TWO, "hydra.sweeper.n_trials=2", f"hydra.sweeper.warm_start={path}", sweep_dir="warm"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "warm start from" in done.stdout and "6 rows taken, 0 skipped" in done.stdout, done.stdout[-3000:]


def test_a_sweep_written_before_the_prefix_resumes_and_warm_starts(tmp_path):
    record = tmp_path / "executions.jsonl"
    args = (*SPACE, "hydra.sweeper.direction=[minimize,minimize]", f"+record={record}")
    done = app(tmp_path, "objectives_app.py", *args, "hydra.sweeper.n_trials=4")
    assert done.returncode == 0, done.stderr[-3000:]
    path = tmp_path / "sweep" / "opt_configurations.csv"
    as_written_before(path)
    old = csv_rows(path)
    assert list(old[0]) == ["x", "y", "id", "values_0", "values_1", "run", "job_num", "status", "duration_s", "error"]

    done = app(tmp_path, "objectives_app.py", *args, "hydra.sweeper.n_trials=6", "hydra.sweeper.resume=true")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(path)  # rewritten in today's layout, the earlier rows kept and not run again
    assert list(rows[0]) == ["x", "y", "exp.id", "exp.values_0", "exp.values_1", *OWN]
    assert [list(r.values()) for r in rows[:4]] == [list(r.values()) for r in old] and len(rows) == 6
    assert len(executions(record)) == 6

    as_written_before(path)
    done = app(tmp_path, "objectives_app.py", *args, "hydra.sweeper.n_trials=2", f"hydra.sweeper.warm_start={path}", sweep_dir="warm")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "6 rows taken, 0 skipped" in done.stdout, done.stdout[-3000:]


def test_a_grid_written_before_the_prefix_resumes(tmp_path):
    args = ("hydra/sweeper=exp_grid", "+x=choice(1,2,3)", "+behave.result=x")
    done = app(tmp_path, "task_app.py", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    path = tmp_path / "sweep" / "exp_results.csv"
    path.write_text("\n".join(path.read_text(encoding="utf-8").splitlines()[:3]) + "\n", encoding="utf-8")  # one job unrecorded
    (tmp_path / "sweep" / ".exp_jobs" / "2.json").unlink()  # and unfinished: it runs again
    as_written_before(path)
    done = app(tmp_path, "task_app.py", *args, "hydra.sweeper.resume=true")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(path)
    assert [(r["x"], r["exp.id"], r["exp.status"], r["exp.result"]) for r in rows] == [(x, str(int(x) - 1), "completed", x) for x in "123"]


def test_report_metrics_named_like_the_sweeps_columns_land_in_the_curves_and_rungs_reads_them(tmp_path, exp_compat):
    done = app(tmp_path, "metrics_app.py", "hydra/sweeper=exp_grid", "+q=choice(1,2,3,4)")
    assert done.returncode == 0, done.stderr[-3000:]
    curves = csv_rows(tmp_path / "sweep" / "exp_curves.csv")
    assert list(curves[0]) == ["exp.job_num", "exp.step", "exp.value", "error", "status", "job_num", "steps"]
    assert len(curves) == 16 and all(
        (c["error"], c["status"], c["job_num"], c["steps"]) == (c["exp.value"], "1.0", "2.0", "3.0") for c in curves
    )
    checked = exp_compat("rungs", "sweep/exp_curves.csv")
    assert checked.returncode == 0 and "4 of 4 trials reported up to step 4" in checked.stdout, checked.stderr


def test_a_report_with_1500_metric_names_keeps_1000_columns_and_says_what_it_dropped(tmp_path):
    done = app(tmp_path, "metrics_app.py", "hydra/sweeper=exp_grid", "+q=1", "+many=1500", "+epochs=2")
    assert done.returncode == 0, done.stderr[-3000:]
    curves = csv_rows(tmp_path / "sweep" / "exp_curves.csv")
    kept = [name for name in curves[0] if not name.startswith("exp.")]
    assert len(kept) == 1000 and kept[:4] == ["error", "status", "job_num", "steps"] and kept[-1] == "m995"
    assert len(curves) == 2 and all(c["m995"] == "995.0" for c in curves)
    warnings = [line for line in done.stdout.splitlines() if "metric columns" in line]
    assert len(warnings) == 1, done.stdout[-3000:]  # once, not at every report
    assert (
        "keeps at most 1,000 metric columns: 504 metric names" in warnings[0]
        and "m996, m997, m998, m999, m1000 and 499 more" in warnings[0]
    )


def test_report_refuses_a_metric_named_with_the_sweeps_prefix(tmp_path):
    (tmp_path / "bad.py").write_text(
        "import hydra\nfrom exp_compat import report\n\n\n@hydra.main(version_base=None, config_path=None, config_name=None)\n"
        "def main(cfg):\n    report(1, 0.5, **{'exp.status': 1.0})\n\n\nif __name__ == '__main__':\n    main()\n",
        encoding="utf-8",
    )
    done = run([sys.executable, "bad.py", "-m", "hydra/sweeper=exp_grid", f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert done.returncode == 1
    rows = csv_rows(tmp_path / "sweep" / "exp_results.csv")
    assert rows[0]["exp.status"] == "failed" and "metric 'exp.status' starts with 'exp.'" in rows[0]["exp.error"]


def test_warm_start_from_a_file_without_a_status_column_takes_its_complete_rows(tmp_path):
    (tmp_path / "by_hand.csv").write_text(
        "x,y,error,duration_s\n0.1,0.2,0.1,0.81\n0.5,0.5,0.5,0.75\n1.5,0.1,1.5,0.35\n0.7,,0.7,0.1\n0.9,0.3,,0.3\n", encoding="utf-8"
    )
    done = app(tmp_path, "objectives_app.py", *SPACE, *TWO, "hydra.sweeper.n_trials=2", "hydra.sweeper.warm_start=by_hand.csv")
    assert done.returncode == 0, done.stderr[-3000:]
    line = next((line for line in done.stdout.splitlines() if "warm start from by_hand.csv" in line), done.stdout[-3000:])
    assert "3 rows taken, 2 skipped" in line and "1 without a value in the space for every parameter" in line, line
    assert "1 without a number for every objective" in line, line


def test_warm_start_reads_a_bom_and_skips_rows_outside_the_space_or_without_finite_objectives(tmp_path):
    # A CSV saved by a spreadsheet starts with a byte-order mark; a value outside the space (x=5 in [0, 2], y=nan)
    # or an objective that is NaN or inf would reach the optimizer's fit, which fails on it.
    (tmp_path / "odd.csv").write_text(
        "\ufeffx,y,error,duration_s\n0.1,0.2,0.1,0.81\n0.5,0.5,0.5,0.75\n5,0.1,5,0.35\n0.7,nan,0.7,0.1\n0.9,0.3,nan,0.3\n0.3,0.3,0.3,inf\n",
        encoding="utf-8",
    )
    warm = ("hydra.sweeper.n_trials=3", "hydra.sweeper.n_initial_points=1", "hydra.sweeper.warm_start=odd.csv")
    done = app(tmp_path, "objectives_app.py", *SPACE, *TWO, *warm)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next((line for line in done.stdout.splitlines() if "warm start from odd.csv" in line), done.stdout[-3000:])
    assert "2 rows taken, 4 skipped" in line and "2 without a value in the space for every parameter" in line, line
    assert "2 without a number for every objective" in line, line


@pytest.mark.parametrize(
    "text,words",
    [
        ("x,y,error\n0.1,0.2,0.1\n", "no column duration_s (its columns: x, y, error): no row can be taken"),
        ("x,y,error,duration_s\n0.1,0.2,,0.3\n", "no row can be taken: 1 without a number for every objective"),
        ("x,y,error,duration_s,exp.status\n0.1,0.2,0.1,0.3,failed\n", "no row can be taken: 1 with status failed"),
        ("x,y,error,duration_s\n", "no row can be taken: it has no rows"),
    ],
)
def test_warm_start_from_a_file_with_nothing_to_take_fails_before_any_job(tmp_path, text, words):
    (tmp_path / "nothing.csv").write_text(text, encoding="utf-8")
    done = app(tmp_path, "objectives_app.py", *SPACE, *TWO, "hydra.sweeper.warm_start=nothing.csv")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"exp_gopt: hydra.sweeper.warm_start=nothing.csv: {words}" in done.stderr, done.stderr[-3000:]
    assert not (tmp_path / "sweep").exists()


def test_a_status_is_written_and_read_back_as_its_word():
    """A trial's status is one ``Status``, written to the results CSV, a job's JSON record and the log as the bare
    word (as before the enum), and read back from a record as the same member."""
    from exp_compat.files.columns import Status
    from hydra_plugins.exp_sweeper._outcome import Outcome, outcome_from_record
    from hydra_plugins.exp_sweeper._results import cell

    words = ["completed", "pruned", "failed"]
    assert [cell(status) for status in Status] == [f"{status}" for status in Status] == ["%s" % s for s in Status] == words
    assert [json.loads(json.dumps({"status": status})) for status in Status] == [{"status": word} for word in words]
    assert [outcome_from_record({"status": word, "ended": 1.0}).status for word in words] == list(Status)
    assert Outcome("pruned").status is Status.PRUNED and Outcome("pruned").pruned
    with pytest.raises(ValueError):
        Outcome("running")
