"""exp_gopt end to end: real Hydra multiruns with real scikit-optimize, as users type them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml
from conftest import APPS, csv_rows, received_configs, run

BASIC = '[x]\ntype = "range"\nbounds = [-10, 10]\n'
LETTERS = '[x]\ntype = "list"\nvalue = ["a", "b", "c", "d", "e", "f"]\n'
NUMBERS = '[x]\ntype = "list"\nvalue = [2.0, -1.0, 7.0, 0.5, -2.5, 3.5]\n'


def summary(tmp_path):
    return yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())


@pytest.mark.upstream  # run again against the newest releases (.ci/run)
def test_quick_start_finds_the_minimum_and_writes_its_files(tmp_path, hydra_app):
    (tmp_path / "basic.conf").write_text(BASIC, encoding="utf-8")
    done = hydra_app(
        "hydra/sweeper=exp_gopt",
        "+exp.params=basic.conf",
        "hydra.sweeper.n_trials=12",
        "hydra.sweeper.n_initial_points=5",
        "hydra.sweeper.seed=3",
        "+behave.result=x",
        "hydra.sweeper.plot=true",
        "+square=true",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(tmp_path / "sweep" / "opt_configurations.csv")
    assert list(rows[0]) == ["x", "exp.id", "exp.evaluation", "exp.run", "exp.job_num", "exp.status", "exp.duration_s", "exp.error"]
    assert len(rows) == 12 and [r["exp.id"] for r in rows] == [str(i) for i in range(12)]
    assert all(-10 <= float(r["x"]) <= 10 and float(r["exp.evaluation"]) == float(r["x"]) for r in rows)
    result = summary(tmp_path)
    assert result["n_trials"] == 12 and result["n_failed"] == 0 and result["name"] == "opt"
    assert result["best_value"] == min(float(r["exp.evaluation"]) for r in rows) == result["best_params"]["x"]
    assert result["best_value"] < -9.5  # minimizing x itself over [-10, 10]: the optimizer goes to the edge
    for plot in ("opt_convergence.png", "opt_objective.png"):
        assert (tmp_path / "sweep" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_maximize_a_dict_objective(tmp_path, hydra_app):
    done = hydra_app(
        "hydra/sweeper=exp_gopt",
        "+x=interval(0,5)",
        "hydra.sweeper.n_trials=12",
        "hydra.sweeper.seed=2",
        "hydra.sweeper.direction=maximize",
        "hydra.sweeper.objective=score",
        "+behave.result=score",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(tmp_path / "sweep" / "opt_configurations.csv")
    assert all(r["exp.status"] == "completed" for r in rows)
    assert summary(tmp_path)["best_value"] == max(float(r["exp.evaluation"]) for r in rows) > 4.5


def test_bad_return_values_are_failed_trials_and_the_sweep_goes_on(tmp_path, hydra_app):
    done = hydra_app(
        "hydra/sweeper=exp_gopt",
        "+x=range(0,3)",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.n_initial_points=3",
        "+behave.results=['nan',text,none]",
        "hydra.sweeper.max_failure_rate=1.0",
    )
    assert done.returncode == 1 and "every job failed" in done.stderr and "Traceback" not in done.stderr
    rows = csv_rows(tmp_path / "sweep" / "opt_configurations.csv")
    assert {r["x"]: (r["exp.status"], r["exp.error"]) for r in rows} == {
        "0": ("failed", "bad return value: returned nan, expected a finite number"),
        "1": ("failed", "bad return value: returned 'not a number', expected a number"),
        "2": ("failed", "bad return value: returned None, expected a number"),
    }
    assert summary(tmp_path)["n_failed"] == 3


def test_nan_among_good_results_does_not_break_the_optimizer(tmp_path):
    # trials 0 and 1 are random (n_initial_points=2); the model proposes the rest, and is refitted after
    # each result: nan, inf or -inf told to it would break the fit (or make -inf the best value)
    done = run(
        [
            sys.executable,
            str(APPS / "job_app.py"),
            "-m",
            "hydra/sweeper=exp_gopt",
            "+x=range(0,8)",
            "hydra.sweeper.n_trials=8",
            "hydra.sweeper.n_initial_points=2",
            "hydra.sweeper.seed=1",
            "+by_job.returns={3:nan,5:inf,6:-inf}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {int(r["exp.job_num"]): r for r in csv_rows(tmp_path / "sweep" / "opt_configurations.csv")}
    assert sorted(rows) == list(range(8)) and sorted(int(r["x"]) for r in rows.values()) == list(range(8))
    failed = {n: r["exp.error"] for n, r in rows.items() if r["exp.status"] != "completed"}
    assert failed == {
        3: "bad return value: returned nan, expected a finite number",
        5: "bad return value: returned inf, expected a finite number",
        6: "bad return value: returned -inf, expected a finite number",
    }
    assert all(float(r["exp.evaluation"]) == float(r["x"]) for n, r in rows.items() if n not in failed)
    result = summary(tmp_path)
    assert result["n_failed"] == 3 and result["best_value"] == min(float(rows[n]["x"]) for n in rows if n not in failed)


def test_a_finite_space_ends_early_without_repeats(tmp_path, hydra_app):
    (tmp_path / "s.conf").write_text(NUMBERS, encoding="utf-8")
    done = hydra_app(
        "hydra/sweeper=exp_gopt",
        "+exp.params=s.conf",
        "hydra.sweeper.n_trials=20",
        "hydra.sweeper.n_initial_points=2",
        "hydra.sweeper.seed=0",
        "+behave.result=x",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(tmp_path / "sweep" / "opt_configurations.csv")
    assert all(r["exp.status"] == "completed" and float(r["exp.evaluation"]) == float(r["x"]) for r in rows)
    assert sorted(float(r["x"]) for r in rows) == [-2.5, -1.0, 0.5, 2.0, 3.5, 7.0]  # each once, no repeat
    assert len(received_configs(tmp_path / "sweep")) == 6  # no 7th job
    assert "all 6 distinct configurations of this finite space have run" in done.stderr + done.stdout
    assert summary(tmp_path)["n_trials"] == 6 and summary(tmp_path)["best_value"] == -2.5


def test_repeats_are_allowed_on_request(tmp_path, hydra_app):
    done = hydra_app("hydra/sweeper=exp_gopt", "+x=choice(1,2)", "hydra.sweeper.n_trials=5", "hydra.sweeper.allow_repeats=true")
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(csv_rows(tmp_path / "sweep" / "opt_configurations.csv")) == 5


def test_parallel_batches_never_hold_the_same_configuration(tmp_path, hydra_app):
    (tmp_path / "s.conf").write_text(
        '[x]\ntype = "range"\nbounds = [0, 5]\ndtype = "int"\n[y]\ntype = "list"\nvalue = [true, false]\n', encoding="utf-8"
    )
    done = hydra_app(
        "hydra/sweeper=exp_gopt",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=4",
        "+exp.params=s.conf",
        "hydra.sweeper.n_trials=12",
        "hydra.sweeper.n_initial_points=4",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    configs = [(c["x"], c["y"]) for c in received_configs(tmp_path / "sweep")]
    assert len(configs) == 12 and len(set(configs)) == 12  # the space has exactly 12 points
    assert "batches of 4 trials" in done.stderr + done.stdout


def test_warm_start_tells_earlier_results(tmp_path, hydra_app):
    """The same seed draws the same first points: only the told earlier results keep the second sweep off them."""
    (tmp_path / "s.conf").write_text(LETTERS, encoding="utf-8")
    same = ("hydra/sweeper=exp_gopt", "+exp.params=s.conf", "hydra.sweeper.n_trials=3", "hydra.sweeper.seed=5", "+behave.result=const")
    first = hydra_app(*same, "hydra.sweep.dir=first")
    assert first.returncode == 0, first.stderr[-3000:]
    done = hydra_app(*same, "hydra.sweeper.warm_start=first/opt_configurations.csv")
    assert done.returncode == 0, done.stderr[-3000:]
    before = {r["x"] for r in csv_rows(tmp_path / "first" / "opt_configurations.csv")}
    after = {r["x"] for r in csv_rows(tmp_path / "sweep" / "opt_configurations.csv")}
    assert len(before) == len(after) == 3 and not before & after


@pytest.mark.parametrize(
    "option,words",
    [  # choices are Enums: Hydra refuses other values as it reads the command
        ("hydra.sweeper.surrogate=SVM", "Invalid value 'SVM', expected one of [GP, RF, ET, GBRT, random]"),
        ("hydra.sweeper.acquisition=UCB", "Invalid value 'UCB', expected one of [EI, PI, LCB, gp_hedge]"),
        ("hydra.sweeper.direction=up", "direction must be minimize, maximize or a list of them (one per objective), got 'up'"),
        ("hydra.sweeper.n_trials=0", "n_trials must be a whole number >= 1"),
        ("hydra.sweeper.progress=false", "Invalid value 'False', expected one of [auto, bar, log]"),
    ],
)
def test_bad_options_are_clear_errors_that_write_nothing(tmp_path, hydra_app, option, words):
    done = hydra_app("hydra/sweeper=exp_gopt", "+x=interval(0,1)", option)
    assert done.returncode == 1 and words in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "sweep").exists()


def test_params_given_whole_on_the_command_line(tmp_path, hydra_app):
    """OmegaConf 2.3 could not merge a command line's {...} into the option while its default was null."""
    done = hydra_app("hydra/sweeper=exp_gopt", '++hydra.sweeper.params={+x:"interval(0,1)"}', "hydra.sweeper.n_trials=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert [0 <= float(r["x"]) <= 1 for r in csv_rows(tmp_path / "sweep" / "opt_configurations.csv")] == [True, True]


def test_nothing_to_optimize(tmp_path, hydra_app):
    done = hydra_app("hydra/sweeper=exp_gopt", "+x=choice(1)")
    assert done.returncode == 1 and "nothing to optimize" in done.stderr


def files_in(directory) -> dict:
    return {str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.read_bytes()) for p in directory.rglob("*") if p.is_file()}


@pytest.mark.parametrize("change", ["surrogate=RF", "acquisition=LCB", "n_initial_points=5", "kappa=3.0", "xi=0.1"])
def test_resume_refuses_changed_optimizer_settings_and_writes_nothing(tmp_path, hydra_app, change):
    sweep = ("hydra/sweeper=exp_gopt", "+x=interval(0,1)", "hydra.sweeper.n_initial_points=2")
    assert hydra_app(*sweep, "hydra.sweeper.n_trials=3").returncode == 0
    before = files_in(tmp_path / "sweep")
    done = hydra_app(*sweep, "hydra.sweeper.n_trials=5", f"hydra.sweeper.{change}", "hydra.sweeper.resume=true")
    setting, value = change.split("=")
    assert done.returncode == 1 and f"cannot resume: hydra.sweeper.{setting} was " in done.stderr, done.stderr[-2000:]
    assert f", now {value} (changed since the sweep in" in done.stderr
    assert "Traceback" not in done.stderr and files_in(tmp_path / "sweep") == before
    more = hydra_app(*sweep, "hydra.sweeper.n_trials=5", "hydra.sweeper.resume=true")  # a larger budget is no change
    assert more.returncode == 0 and len(csv_rows(tmp_path / "sweep" / "opt_configurations.csv")) == 5


def test_resume_after_sigkill_finishes_n_trials_without_repeats(tmp_path):
    record = tmp_path / "executions.jsonl"
    sweep = tmp_path / "sweep"
    args = [
        sys.executable,
        str(APPS / "task_app.py"),
        "-m",
        "hydra/sweeper=exp_gopt",
        "+x=range(0,40)",
        "hydra.sweeper.n_trials=14",
        "hydra.sweeper.n_initial_points=3",
        "+behave.sleep=0.15",
        f"+behave.record={record}",
        f"hydra.sweep.dir={sweep}",
    ]
    first = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = sweep / "opt_configurations.csv"
    deadline = time.monotonic() + 120
    journal = sweep / ".exp_jobs" / "launched.jsonl"

    def running() -> bool:  # the last launched job has not written its record yet
        lines = journal.read_text().splitlines() if journal.exists() else []
        return bool(lines) and not (sweep / ".exp_jobs" / f"{json.loads(lines[-1])['job_num']}.json").exists()

    while time.monotonic() < deadline and not (results.exists() and len(results.read_text().splitlines()) >= 6 and running()):
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    kept = {r["x"] for r in csv_rows(results)}
    assert 5 <= len(kept) < 14
    executed_before = len(record.read_text().splitlines())
    launched = [json.loads(line) for line in (sweep / ".exp_jobs" / "launched.jsonl").read_text().splitlines()]
    unfinished = {str(e["params"]["x"]) for e in launched if not (sweep / ".exp_jobs" / f"{e['job_num']}.json").exists()}
    done = subprocess.run([*args, "hydra.sweeper.resume=true"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(results)
    assert len(rows) == 14 and len({r["x"] for r in rows}) == 14 and len({r["exp.job_num"] for r in rows}) == 14
    again = [json.loads(line)["config"]["x"] for line in record.read_text().splitlines()[executed_before:]]
    assert not {str(x) for x in again} & kept
    assert unfinished and unfinished <= {str(x) for x in again[: len(unfinished)]}  # what was running runs first
    assert yaml.safe_load((sweep / "optimization_results.yaml").read_text())["n_trials"] == 14


def test_pruned_value_set_on_the_command_line_changes_what_the_optimizer_learns(tmp_path):
    """The same seeded sweep with pruned_value=last and =ignore: the same random first trials, pruned alike;
    told the pruned trials' values or not, the optimizer proposes other points after them."""
    from test_early_stopping import ASHA_9, sweep

    points = {}
    for policy in ("last", "ignore"):
        done = sweep(
            tmp_path,
            "hydra/sweeper=exp_gopt",
            *ASHA_9,
            "+q=interval(0.0,9.0)",
            "hydra.sweeper.n_trials=8",
            "hydra.sweeper.n_initial_points=5",
            "hydra.sweeper.seed=3",
            f"hydra.sweeper.pruned_value={policy}",
            name=policy,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads((tmp_path / policy / "opt_sweep.json").read_text())["pruned_value"] == policy
        points[policy] = [(r["q"], r["exp.status"]) for r in csv_rows(tmp_path / policy / "opt_configurations.csv")]
    assert points["last"][:5] == points["ignore"][:5] and "pruned" in {status for _, status in points["last"][:5]}
    assert points["last"][5:] != points["ignore"][5:], points
