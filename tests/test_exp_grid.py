"""exp_grid end to end: real Hydra multiruns in subprocesses, as users type them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import APPS, csv_rows, received_configs, run, typed

from exp_compat import Space

SPACE = """
[x]
type = "range"
bounds = [0, 3]
dtype = "int"

[model.lr]
type = "list"
value = [0.1, 1e-5]

[model.name]
type = "list"
value = ["1", "it's", "a b"]

[flag]
type = "value"
value = true
"""


def nested(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def jobs(sweep: Path) -> list:
    """What the jobs received, less exp.params (the +exp.params override reaches them too, as typed)."""
    configs = received_configs(sweep)
    for config in configs:
        config.pop("exp", None)
    return configs


def expected_jobs(space_file: Path, runs: int = 1, seed=None, ids=None):
    """What the jobs must receive: each configuration's parameters, ``runs`` times, and nothing else."""
    grid = Space.from_file(space_file).grid(runs=runs, seed=seed)
    rows = grid.select(ids) if ids is not None else iter(grid)
    return Counter(repr(typed(nested({k: v for k, v in row.items() if k not in ("id", "run")}))) for row in rows)


@pytest.mark.upstream  # run again against the newest releases (.ci/run)
@pytest.mark.parametrize("launcher", ["basic", pytest.param("joblib", marks=pytest.mark.slow)])
def test_every_configuration_reaches_its_job_exactly(tmp_path, hydra_app, launcher):
    (tmp_path / "space.conf").write_text(SPACE, encoding="utf-8")
    done = hydra_app("hydra/sweeper=exp_grid", f"hydra/launcher={launcher}", "+exp.params=space.conf", "hydra.sweeper.runs=2")
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "sweep"
    received = jobs(sweep)
    assert len(received) == 3 * 2 * 3 * 2
    assert Counter(repr(typed(c)) for c in received) == expected_jobs(tmp_path / "space.conf", runs=2)

    rows = csv_rows(sweep / "exp_results.csv")
    assert list(rows[0]) == [
        "x",
        "model.lr",
        "model.name",
        "flag",
        "exp.id",
        "exp.run",
        "exp.job_num",
        "exp.status",
        "exp.duration_s",
        "exp.error",
        "exp.result",
    ]
    assert sorted(int(r["exp.job_num"]) for r in rows) == list(range(36))
    assert {(r["exp.id"], r["exp.run"]) for r in rows} == {(str(i), str(r)) for i in range(18) for r in (1, 2)}
    assert all(r["exp.status"] == "completed" and float(r["exp.duration_s"]) >= 0 for r in rows)
    assert all(r["exp.result"] == r["x"] for r in rows)
    planned = csv_rows(sweep / "exp_params.csv")
    assert list(planned[0]) == ["id", "run", "x", "model.lr", "model.name", "flag"] and len(planned) == 36
    assert (sweep / "multirun.yaml").exists()
    # job numbers match output directories: job #n wrote into sweep/n, and had its id and run in its environment
    for row in rows:
        config = json.loads((sweep / row["exp.job_num"] / "received.json").read_text())
        assert (str(config["x"]), str(config["model"]["lr"])) == (row["x"], row["model.lr"])
        env = (sweep / row["exp.job_num"] / ".hydra" / "hydra.yaml").read_text()
        assert f"EXP_CONFIG_ID: '{row['exp.id']}'" in env and f"EXP_RUN: '{row['exp.run']}'" in env


def test_config_ids_runs_only_those_configurations(tmp_path, hydra_app):
    (tmp_path / "space.conf").write_text(SPACE, encoding="utf-8")
    done = hydra_app("hydra/sweeper=exp_grid", "+exp.params=space.conf", "hydra.sweeper.config_ids=[3,7]", "hydra.sweeper.runs=2")
    assert done.returncode == 0, done.stderr[-3000:]
    received = jobs(tmp_path / "sweep")
    assert Counter(repr(typed(c)) for c in received) == expected_jobs(tmp_path / "space.conf", runs=2, ids=[3, 7])
    assert len(csv_rows(tmp_path / "sweep" / "exp_params.csv")) == 4


def test_command_line_sweeps_merge_with_the_file_and_win_clashes(tmp_path, hydra_app):
    (tmp_path / "space.conf").write_text('[x]\ntype = "list"\nvalue = [1, 2]\n[z]\ntype = "value"\nvalue = "from file"\n', encoding="utf-8")
    done = hydra_app(
        "hydra/sweeper=exp_grid",
        "+exp.params=space.conf",
        "x=choice(5,6)",
        "+y=range(0,2)",
        "+db.user=me",
        "hydra.sweeper.id_key=exp_id",
        "hydra.sweeper.run_key=null",
        "hydra.sweeper.name=mine",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    received = received_configs(tmp_path / "sweep")
    got = sorted((c["x"], c["y"], c["z"], c["db"]["user"], c["exp_id"]) for c in received)
    assert [g[:4] for g in got] == [(x, y, "from file", "me") for x in (5, 6) for y in (0, 1)]
    assert sorted(g[4] for g in got) == [0, 1, 2, 3] and all("run" not in c for c in received)
    assert (tmp_path / "sweep" / "mine_results.csv").exists() and (tmp_path / "sweep" / "mine_params.csv").exists()


def test_sweeper_params_from_config(tmp_path, hydra_app):
    (tmp_path / "sweep.yaml").write_text(
        "defaults:\n  - override hydra/sweeper: exp_grid\n  - _self_\n"
        "hydra:\n  sweeper:\n    params:\n      ++x: range(0,3)\n      ++w: a,b\n",
        encoding="utf-8",
    )
    done = hydra_app("--config-dir", str(tmp_path), "--config-name", "sweep")
    assert done.returncode == 0, done.stderr[-3000:]
    got = sorted((c["x"], c["w"]) for c in received_configs(tmp_path / "sweep"))
    assert got == [(x, w) for x in range(3) for w in "ab"]


def test_random_parameters_are_drawn_from_the_seed(tmp_path, hydra_app):
    (tmp_path / "space.conf").write_text('[x]\ntype = "random"\nbounds = [0, 10]\nn = 4\n', encoding="utf-8")
    done = hydra_app("hydra/sweeper=exp_grid", "+exp.params=space.conf", "hydra.sweeper.seed=11")
    assert done.returncode == 0, done.stderr[-3000:]
    assert Counter(repr(typed(c)) for c in jobs(tmp_path / "sweep")) == expected_jobs(tmp_path / "space.conf", seed=11)


def test_a_failing_job_is_recorded_and_the_sweep_goes_on(tmp_path, hydra_app):
    done = hydra_app("hydra/sweeper=exp_grid", "+x=range(0,4)", "+behave.fail_if=2")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {int(r["x"]): r for r in csv_rows(tmp_path / "sweep" / "exp_results.csv")}
    assert [rows[x]["exp.status"] for x in range(4)] == ["completed", "completed", "failed", "completed"]
    assert rows[2]["exp.error"] == "ValueError: boom at x=2" and rows[2]["exp.result"] == ""
    log_path = tmp_path / "sweep" / rows[2]["exp.job_num"] / "task_app.log"
    assert "boom at x=2" in log_path.read_text() and str(log_path) in done.stdout + done.stderr


def test_cancel_stops_launching_after_the_first_failure(tmp_path, hydra_app):
    done = hydra_app(
        "hydra/sweeper=exp_grid", "+x=range(0,6)", "+behave.fail_if=1", "hydra.sweeper.on_failure=cancel", "hydra.sweeper.max_batch_size=1"
    )
    assert done.returncode != 0
    assert "stopped: a job failed and hydra.sweeper.on_failure=cancel" in done.stderr
    assert "Traceback" not in done.stderr
    rows = csv_rows(tmp_path / "sweep" / "exp_results.csv")
    assert [(r["x"], r["exp.status"]) for r in rows] == [("0", "completed"), ("1", "failed")]
    assert len(received_configs(tmp_path / "sweep")) == 2


def test_max_failure_rate_bounds_failures(tmp_path, hydra_app):
    done = hydra_app(
        "hydra/sweeper=exp_grid",
        "+x=0,1,2,3,4,5,6,7",
        "+behave.fail_if=0",
        "hydra.sweeper.max_failure_rate=0.3",
        "hydra.sweeper.max_batch_size=2",
    )
    assert done.returncode != 0 and "more than max_failure_rate=0.3" in done.stderr
    assert len(csv_rows(tmp_path / "sweep" / "exp_results.csv")) == 2  # 1 of 2 failed after the first batch


HUGE = [("hydra.sweeper.runs=1180591620717411303424",), tuple(f"+p{i}=range(0,1000)" for i in range(8))]


@pytest.mark.parametrize("huge", HUGE, ids=["2**70 runs", "10**24 configurations"])
def test_a_grid_of_more_jobs_than_len_can_count_runs_until_stopped(tmp_path, hydra_app, huge):
    done = hydra_app(
        "hydra/sweeper=exp_grid", "+x=0,1", *huge, "+behave.fail_if=0", "hydra.sweeper.max_failure_rate=0", "hydra.sweeper.max_batch_size=1"
    )
    assert done.returncode == 1 and "more than max_failure_rate=0" in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]


@pytest.mark.parametrize(
    "text,words",
    [
        ("", "defines no parameters"),
        ('[x]\ntype = "range"\nbounds = [3, 1]\n', "parameter 'x': bounds must have low < high"),
        ("[x\n", "invalid TOML"),
    ],
)
def test_bad_space_is_a_clear_error_and_writes_nothing(tmp_path, hydra_app, text, words):
    (tmp_path / "space.conf").write_text(text, encoding="utf-8")
    done = hydra_app("hydra/sweeper=exp_grid", "+exp.params=space.conf")
    assert done.returncode == 1 and words in done.stderr and "space.conf" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "sweep").exists()


def test_interval_has_no_grid(tmp_path, hydra_app):
    done = hydra_app("hydra/sweeper=exp_grid", "+x=interval(0,1)")
    assert done.returncode == 1 and "an interval has no grid" in done.stderr and "Traceback" not in done.stderr


def test_missing_space_file_is_resolved_against_the_launch_directory(tmp_path, hydra_app):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "s.conf").write_text('[x]\ntype = "list"\nvalue = [1]\n', encoding="utf-8")
    done = hydra_app("hydra/sweeper=exp_grid", "+exp.params=sub/s.conf", "hydra.job.chdir=true")
    assert done.returncode == 0, done.stderr[-2000:]
    assert [c["x"] for c in received_configs(tmp_path / "sweep")] == [1]
    done = hydra_app("hydra/sweeper=exp_grid", "+exp.params=nope.conf", "hydra.sweep.dir=other")
    assert done.returncode == 1 and "nope.conf: no such file" in done.stderr


@pytest.mark.parametrize("batch", [2, 20], ids=["rows-written", "mid-batch"])
def test_resume_after_sigkill_loses_nothing_and_repeats_nothing(tmp_path, batch):
    """Kill -9 a running sweep, resume it: every job that finished is kept, none is run twice.

    With batches of 20 the kill lands before the launcher returns anything, so what
    finished is known only from the jobs' own records; with batches of 2 from the CSV too.
    """
    record = tmp_path / "executions.jsonl"
    sweep = tmp_path / "sweep"
    args = [
        sys.executable,
        str(APPS / "task_app.py"),
        "-m",
        "hydra/sweeper=exp_grid",
        "+x=range(0,10)",
        "hydra.sweeper.runs=2",
        "+behave.sleep=0.2",
        f"hydra.sweeper.max_batch_size={batch}",
        "hydra.sweeper.id_key=id",
        "hydra.sweeper.run_key=run",
        f"+behave.record={record}",
        f"hydra.sweep.dir={sweep}",
    ]
    first = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = sweep / ".exp_jobs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(records.glob("*.json")) if records.exists() else []) < 7:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    finished = [json.loads((sweep / p.stem / "received.json").read_text()) for p in records.glob("*.json")]
    finished_before = {(c["id"], c["run"]) for c in finished}
    assert 7 <= len(finished_before) < 20
    dirs_before = {p.name: p.stat().st_mtime_ns for p in sweep.iterdir() if p.name.isdigit()}
    executed_before = len(record.read_text().splitlines())

    done = subprocess.run([*args, "hydra.sweeper.resume=true"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(sweep / "exp_results.csv")
    assert len(rows) == 20 and len({(r["exp.id"], r["exp.run"]) for r in rows}) == 20
    assert len({r["exp.job_num"] for r in rows}) == 20 and all(r["exp.status"] == "completed" for r in rows)
    executed_after = [json.loads(line)["config"] for line in record.read_text().splitlines()[executed_before:]]
    assert not {(c["id"], c["run"]) for c in executed_after} & finished_before
    assert len(executed_after) == 20 - len(finished_before)
    for name, mtime in dirs_before.items():  # no earlier job directory was overwritten
        assert (sweep / name).stat().st_mtime_ns == mtime


def test_resume_refuses_a_changed_space(tmp_path, hydra_app):
    assert hydra_app("hydra/sweeper=exp_grid", "+x=range(0,2)").returncode == 0
    done = hydra_app("hydra/sweeper=exp_grid", "+x=range(0,3)", "hydra.sweeper.resume=true")
    assert done.returncode == 1 and "cannot resume: space changed" in done.stderr


def files(directory: Path) -> dict:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file() and p.name != ".exp_lock"}


@pytest.mark.parametrize("subdir", ["${hydra.job.num}", "exp/${hydra.job.num}", "run_${hydra.job.num}"])
def test_a_new_sweep_where_one_ran_sets_the_earlier_sweep_aside_whole_into_one_folder(tmp_path, hydra_app, subdir):
    sweep = tmp_path / "sweep"
    assert hydra_app("hydra/sweeper=exp_grid", "+x=range(0,2)", f"hydra.sweep.subdir={subdir}").returncode == 0
    before = files(sweep)
    assert {"exp_results.csv", "exp_params.csv", "exp_sweep.json", subdir.replace("${hydra.job.num}", "1") + "/received.json"} <= set(
        before
    )
    done = hydra_app("hydra/sweeper=exp_grid", "+x=range(0,3)", f"hydra.sweep.subdir={subdir}")
    assert done.returncode == 0 and "set aside whole" in done.stdout + done.stderr, done.stderr[-2000:]
    assert {f"exp.1/{name}": data for name, data in before.items()}.items() <= files(sweep).items()  # nothing lost
    assert len(csv_rows(sweep / "exp_results.csv")) == 3 and len(csv_rows(sweep / "exp.1" / "exp_results.csv")) == 2
    assert (sweep / subdir.replace("${hydra.job.num}", "0") / "received.json").exists()  # numbered from 0 again
    # a sweep of another name may share the directory, as EXP's experiments did: the earlier one's files are kept
    now = files(sweep)
    other = hydra_app("hydra/sweeper=exp_grid", "+x=range(0,3)", f"hydra.sweep.subdir={subdir}", "hydra.sweeper.name=other")
    assert other.returncode == 0, other.stderr[-2000:]
    moved = {"multirun.yaml": "multirun.1.yaml", ".exp_jobs": ".exp_jobs.1"}
    kept = files(sweep)
    for name, data in now.items():
        top, _, rest = name.partition("/")
        assert kept.get(moved.get(top, top) + ("/" + rest if rest else "")) == data, name


def test_an_earlier_sweep_whose_job_directories_cannot_be_told_is_refused_and_nothing_changes(tmp_path, hydra_app):
    sweep = tmp_path / "sweep"
    subdir = "hydra.sweep.subdir=${hydra.job.override_dirname}"
    assert hydra_app("hydra/sweeper=exp_grid", "+x=range(0,2)", subdir).returncode == 0
    before = files(sweep)
    done = hydra_app("hydra/sweeper=exp_grid", "+x=range(0,3)", subdir)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "depend on more than the job number" in done.stderr, done.stderr
    assert f"hydra.sweeper.resume=true hydra.sweep.dir={sweep}" in done.stderr and f"hydra.sweep.dir={sweep}-2" in done.stderr
    assert files(sweep) == before


def test_progress_bar_on_request_and_log_lines_always(tmp_path, hydra_app):
    done = hydra_app("hydra/sweeper=exp_grid", "+x=range(0,3)", "hydra.sweeper.progress=bar")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "exp_grid [########################] 3/3" in done.stderr and "\x1b[K" in done.stderr  # drawn, then cleared
    assert done.stdout.count("exp_grid [") + done.stderr.count("] #") >= 3  # one log line per finished job
    plain = hydra_app("hydra/sweeper=exp_grid", "+x=range(0,3)", "hydra.sweep.dir=plain")
    assert "\x1b[K" not in plain.stderr and "[####" not in plain.stderr  # not a terminal: log lines only
    assert all(f"#{n} done" in plain.stdout + plain.stderr for n in range(3))


def test_planned_grid_csv_lists_every_job_as_the_grid_does(tmp_path):
    from exp_compat import ListParam, RangeParam
    from hydra_plugins.exp_sweeper._grid import write_planned_grid
    from hydra_plugins.exp_sweeper._results import cell

    grid = Space([RangeParam("a", 0, 3, dtype="int"), ListParam("b", ("x,y", 'q"')), RangeParam("c", 0, 1, 0.5)]).grid(runs=2)
    for ids in (None, [4, 1]):
        write_planned_grid(tmp_path / "p.csv", grid, ids)
        rows = grid.select(ids) if ids else iter(grid)
        expected = [{"id": str(r["id"]), "run": str(r["run"]), **{k: cell(r[k]) for k in "abc"}} for r in rows]
        assert csv_rows(tmp_path / "p.csv") == expected


def test_durations_are_found_under_a_sweep_dir_that_uses_now(tmp_path, hydra_app):
    # ${now:...} must be resolved once, as the jobs resolve it, not again when results are read
    done = hydra_app("hydra/sweeper=exp_grid", "+x=range(0,3)", "+behave.sleep=0.05", "hydra.sweep.dir=out/${now:%H-%M-%S-%f}")
    assert done.returncode == 0, done.stderr[-2000:]
    (sweep,) = (tmp_path / "out").iterdir()
    rows = csv_rows(sweep / "exp_results.csv")
    assert len(rows) == 3 and all(float(r["exp.duration_s"]) >= 0.05 for r in rows)


@pytest.mark.parametrize("kind", ["median", "hyperband"])
def test_median_and_hyperband_stop_trials_in_a_real_sweep(tmp_path, kind):
    """The basic launcher runs the trials one after another, best first: every one after q = 0 is worse than
    what its rungs have seen. Each decision in the journal is the rule's (hyperband's brackets drawn with the
    sweep's seed), a stopped trial trained no epoch past its rung, and the best is never stopped."""
    from test_early_stopping import journal, replayed, sweep, trained

    from exp_compat.early_stopping.pruners import make_pruner

    log = tmp_path / "epochs.jsonl"
    pruning = [f"hydra.sweeper.pruner={kind}", "hydra.sweeper.max_resource=9", "hydra.sweeper.seed=7", "+epochs=9"]
    done = sweep(tmp_path, "hydra/sweeper=exp_grid", *pruning, "+q=range(0,9)", f"+behave.log={log}")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {int(r["q"]): r for r in csv_rows(tmp_path / "sweep" / "exp_results.csv")}
    epochs = trained(log)
    assert rows[0]["exp.status"] == "completed" and epochs[0] == 9
    pruned = {q for q, r in rows.items() if r["exp.status"] == "pruned"}
    assert all(epochs[q] == int(r["exp.steps"]) for q, r in rows.items())
    entries = journal(tmp_path / "sweep")
    assert [e["continue"] for e in entries] == replayed(make_pruner(kind, 1.0, 9.0, 3, 0, 0.0, 7), entries)
    assert {(e["trial"], e["step"]) for e in entries if not e["continue"]} == {(f"{q}:1", epochs[q]) for q in pruned}
    if kind == "median":  # a rung at every step: each later trial is worse than the median at its first step
        assert pruned == set(range(1, 9)) and set(epochs.values()) == {9, 1}
    else:  # bracket 0 stops at 1 and 3, bracket 1 at 3, bracket 2 never
        assert pruned and {epochs[q] for q in pruned} <= {1, 3}


def test_a_bad_decision_timeout_fails_the_jobs_at_their_first_rung_naming_it(tmp_path):
    from test_early_stopping import ASHA_9, CURVE

    args = [*CURVE, "hydra/sweeper=exp_grid", *ASHA_9, "+q=range(0,2)", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    done = run(["env", "EXP_DECISION_TIMEOUT_S=soon", *args], cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    rows = csv_rows(tmp_path / "sweep" / "exp_results.csv")
    error = "ValueError: EXP_DECISION_TIMEOUT_S must be a number of seconds > 0, got 'soon'"
    assert [(r["exp.status"], r["exp.error"]) for r in rows] == [("failed", error)] * 2
