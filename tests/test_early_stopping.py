"""Early stopping: ``exp_compat.report`` in the job, the pruners in the sweep, real Hydra multiruns.

The app (tests/apps/curve_app.py) trains on a known learning curve, ``q + 10 / epoch``, so which trials a
pruner must stop is known in advance; it logs every epoch it actually trains, so a test can tell how far a
stopped trial went.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest
from conftest import APPS, csv_rows, run

from exp_compat.early_stopping.pruners import AshaPruner, HyperbandPruner, MedianPruner, Pruner, make_pruner
from exp_compat.early_stopping.rungs import Rungs
from hydra_plugins.exp_sweeper._results import CurvesStore

CURVE = [sys.executable, str(APPS / "curve_app.py"), "-m"]
ASHA_9 = ["hydra.sweeper.pruner=asha", "hydra.sweeper.max_resource=9", "+epochs=9"]  # rungs at epochs 1 and 3


def sweep(tmp_path: Path, *overrides: str, name: str = "sweep", timeout: float = 180) -> subprocess.CompletedProcess:
    return run([*CURVE, *overrides, f"hydra.sweep.dir={tmp_path / name}"], cwd=tmp_path, timeout=timeout)


def trained(log: Path) -> Dict[float, int]:
    """The last epoch each configuration (by q) actually trained."""
    last: Dict[float, int] = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if "epoch" in entry:  # not what a child process or a lingering job wrote
            last[entry["q"]] = max(last.get(entry["q"], 0), entry["epoch"])
    return last


def journal(sweep_dir: Path) -> List[dict]:
    return [json.loads(line) for line in (sweep_dir / ".exp_jobs" / "rungs.jsonl").read_text().splitlines()]


def replayed(pruner: Pruner, entries: List[dict], sign: float = 1.0) -> List[bool]:
    """The decisions the rule gives when the journal's reports arrive in the journal's order."""
    return [pruner.decide(e["trial"], e["rung"], sign * e["value"]) for e in entries]


def asha(**options) -> Pruner:
    settings = dict(min_resource=1.0, max_resource=9.0, reduction_factor=3, n_startup_trials=0, n_warmup_steps=0.0)
    settings.update(options)
    return AshaPruner(**settings)


# -- the rules, on hand-computed cases ------------------------------------------------------------------


def test_rungs_are_where_both_ends_of_the_channel_say():
    geometric = Rungs(1.0, factor=3.0, end=27.0)
    assert [geometric.at(k) for k in range(4)] == [1.0, 3.0, 9.0, None]
    assert geometric.crossed(0.5, 0) is None and geometric.crossed(1, 0) == 0 and geometric.crossed(2, 1) is None
    assert geometric.crossed(10, 0) == 2  # a report past several rungs decides at the last one
    assert geometric.crossed(100, 3) is None  # no rung at or past the end: the trial is complete there
    every = Rungs(2.0, every=2.0)
    assert [every.at(k) for k in range(3)] == [2.0, 4.0, 6.0] and Rungs.from_text(every.to_text()) == every
    assert every.crossed(1e12, 0) == 499_999_999_999 and geometric.crossed(1e300, 0) == 2  # at once, not rung by rung
    tenths = Rungs(0.1, factor=3.0)  # 0.1 * 3 is 0.30000000000000004 in floats: a step of 0.3 still reaches it
    assert [tenths.crossed(step, 0) for step in (0.1, 0.3, 0.9, 2.7)] == [0, 1, 2, 3]
    rounded = Rungs(1.3717421124828528, factor=3.0, end=1000.0)  # 1000 / 3**6 in steps: its 7th rung is 999.9999999999997,
    assert rounded.at(5) == pytest.approx(1000 / 3) and rounded.at(6) is None  # which is the end, not a rung before it
    assert rounded.crossed(1000, 0) == 5


def test_asha_keeps_the_top_third_of_what_its_rung_has_seen_and_never_waits():
    pruner = asha()
    # alone at the rung: goes on; then each arrival against the values recorded so far, its own included
    decisions = [pruner.decide(key, 0, value) for key, value in [("a", 5), ("b", 4), ("c", 6), ("d", 4.5), ("e", 1), ("f", 4.2), ("g", 3)]]
    # a: [5] keep 1; b: [4,5] keep 1 (4); c: 6 > 4; d: 4.5 > 4; e: best; f: 6 values keep 2 (1, 4): 4.2 > 4;
    # g: 7 values keep 2 (1, 3): goes on
    assert decisions == [True, True, False, False, True, False, True]
    assert pruner.decide("c", 0, 0.0) is False  # a trial's first value at a rung stands (a requeued job)
    assert pruner.decide("z", 1, 99.0) is True  # another rung: alone there


def test_startup_trials_and_warmup_steps_hold_every_rule_back():
    pruner = asha(n_startup_trials=2)
    assert [pruner.decide(k, 0, v) for k, v in [("a", 10), ("b", 20), ("c", 30)]] == [True, True, False]
    assert asha(n_warmup_steps=2).rungs("a") == Rungs(3.0, factor=3.0, end=9.0)
    median = MedianPruner(1.0, None, 3, 0, 2.5)
    assert median.rungs("a") == Rungs(3.0, every=1.0)  # every step from the first after the warm-up
    assert asha(n_warmup_steps=9).bracket_rungs(0).at(0) is None  # nothing left to decide: refused as an option


def test_median_stops_a_trial_worse_than_the_median_of_the_others():
    pruner = MedianPruner(1.0, None, 3, 0, 0.0)
    assert pruner.decide("a", 0, 1.0) and pruner.decide("b", 0, 3.0) is False  # median of [1] is 1
    assert pruner.decide("c", 0, 2.0)  # median of [1, 3] is 2: not worse
    assert pruner.decide("d", 0, 2.5) is False  # median of [1, 3, 2] is 2
    assert pruner.decide("e", 0, 2.25)  # median of [1, 3, 2, 2.5] is 2.25


def test_hyperband_brackets_are_weighted_as_hyperband_and_the_same_in_every_process():
    pruner = HyperbandPruner(1.0, 27.0, 3, 0, 0.0, seed=7)
    assert pruner.weights == [27, 12, 6, 4]  # n_i = ceil((s_max + 1) / (s + 1) * eta**s)
    assert [pruner.bracket_rungs(b) for b in range(4)] == [
        Rungs(1.0, factor=3.0, end=27.0),
        Rungs(3.0, factor=3.0, end=27.0),
        Rungs(9.0, factor=3.0, end=27.0),
        Rungs(27.0, end=27.0),
    ]
    assert pruner.bracket_rungs(3).at(0) is None  # the last bracket trains every trial to the end
    keys = [f"{i}:1" for i in range(4900)]
    counts = [0, 0, 0, 0]
    for key in keys:
        counts[pruner.bracket(key)] += 1
    assert [round(c / 100) for c in counts] == [27, 12, 6, 4]
    code = "from exp_compat.early_stopping.pruners import make_pruner; p = make_pruner('hyperband', 1.0, 27.0, 3, 0, 0.0, 7); "
    code += "print([p.bracket(f'{i}:1') for i in range(200)])"
    for hash_seed in ("1", "2"):  # Python's hash() differs between these processes; the brackets must not
        out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONHASHSEED=hash_seed), capture_output=True, text=True)
        assert json.loads(out.stdout) == [pruner.bracket(f"{i}:1") for i in range(200)], out.stderr
    # brackets compete apart: a trial alone in its bracket goes on, whatever the other brackets recorded
    first, other = next(k for k in keys if pruner.bracket(k) == 1), [k for k in keys if pruner.bracket(k) == 0][:5]
    for key in other:
        pruner.decide(key, 0, 0.0)
    assert pruner.decide(first, 0, 100.0)
    assert make_pruner("hyperband", 1.0, 27.0, 3, 0, 0.0, 8).weights == pruner.weights


def test_curves_file_gains_a_column_for_a_new_metric_and_keeps_its_rows(tmp_path):
    store = CurvesStore(tmp_path / "c.csv", resume=False)
    store.append(0, 1, 0.5, {"acc": 0.1})
    store.append(0, 2, 0.4, {"acc": 0.2, "lr": 0.01})
    store.close()
    assert csv_rows(tmp_path / "c.csv") == [
        {"exp.job_num": "0", "exp.step": "1", "exp.value": "0.5", "acc": "0.1", "lr": ""},
        {"exp.job_num": "0", "exp.step": "2", "exp.value": "0.4", "acc": "0.2", "lr": "0.01"},
    ]
    again = CurvesStore(tmp_path / "c.csv", resume=True)
    assert again.last_steps == {"0": 2.0}
    again.close()


# -- report() outside an exp sweep ------------------------------------------------------------------------


def test_report_does_nothing_and_never_raises_outside_an_exp_sweep(tmp_path):
    code = "from exp_compat import report; print(report(1, 0.5), report('x', None, acc='y'), report(1, float('nan')))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXP_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.split() == ["None", "None", "None"], out.stderr
    log = tmp_path / "epochs.jsonl"
    basic = run([*CURVE, "+q=0,5", "+epochs=4", f"+behave.log={log}", f"hydra.sweep.dir={tmp_path / 'basic'}"], cwd=tmp_path)
    assert basic.returncode == 0, basic.stderr[-3000:]
    assert trained(log) == {0.0: 4, 5.0: 4}  # Hydra's basic sweeper: every epoch runs


@pytest.mark.parametrize("launcher", ["exp_local", "basic"])
def test_an_exp_sweep_without_a_pruner_records_every_report_and_stops_nothing(tmp_path, launcher, hydra_app):
    log = tmp_path / "epochs.jsonl"
    done = sweep(tmp_path, "hydra/sweeper=exp_grid", *LAUNCHERS[launcher], "+q=range(0,3)", "+epochs=4", f"+behave.log={log}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert trained(log) == {0.0: 4, 1.0: 4, 2.0: 4}
    rows = csv_rows(tmp_path / "sweep" / "exp_results.csv")
    assert [r["exp.status"] for r in rows] == ["completed"] * 3 and "exp.steps" not in rows[0]  # the results file as before pruners
    by_job = {r["exp.job_num"]: float(r["q"]) for r in rows}
    curves = csv_rows(tmp_path / "sweep" / "exp_curves.csv")
    assert sorted((by_job[c["exp.job_num"]], int(c["exp.step"]), float(c["exp.value"])) for c in curves) == [
        (q, epoch, pytest.approx(q + 10 / epoch)) for q in (0.0, 1.0, 2.0) for epoch in range(1, 5)
    ]
    assert not (tmp_path / "sweep" / ".exp_jobs" / "rungs.jsonl").exists()  # nothing was decided
    assert not list((tmp_path / "sweep" / ".exp_jobs" / "reports").iterdir())  # each job's channel went once it was recorded
    assert "'exp-compat rungs' on it tells how early a pruner could cut" in done.stdout + done.stderr
    silent = hydra_app("hydra/sweeper=exp_grid", "+x=1,2", f"hydra.sweep.dir={tmp_path / 'silent'}")  # jobs that never report
    assert silent.returncode == 0, silent.stderr[-3000:]
    assert (tmp_path / "silent" / "exp_results.csv").exists() and not (tmp_path / "silent" / "exp_curves.csv").exists()
    assert "exp-compat rungs" not in silent.stdout + silent.stderr


def test_ringing_a_bell_nobody_drains_never_blocks():
    """A worker's bell outlives its jobs and is drained only while a job waits at a rung: the sweep rings it
    after every decision, and a full bell must not hang the sweep's reading thread (it did, after 10 rings)."""
    from exp_compat.early_stopping.reporting import Bell, ring

    bell = Bell()
    try:
        rung = threading.Event()
        threading.Thread(target=lambda: [ring(bell.name) for _ in range(1000)] and rung.set(), daemon=True).start()
        assert rung.wait(5), "ringing a full bell blocked"
        bell.wait(0)  # drained: it rings again
        ring(bell.name)
        assert select.select([bell.socket], [], [], 1)[0]
    finally:
        bell.close()


def test_a_channel_that_cannot_be_written_loses_the_report_not_the_job(tmp_path):
    env = dict(os.environ, EXP_REPORT=str(tmp_path / "gone" / "0"), EXP_RUNGS=Rungs(1.0, factor=3.0).to_text())
    code = "from exp_compat import report\nfor step in range(1, 5):\n    report(step, 1.0 / step)\nprint('trained')"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.split() == ["trained"], done.stderr
    assert "could not reach the sweep" in done.stderr and "Traceback" not in done.stderr


# -- real sweeps ------------------------------------------------------------------------------------------


LAUNCHERS = {
    "exp_local": ["hydra/launcher=exp_local", "hydra.launcher.workers=3"],
    "basic": [],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=3"],
}


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_asha_with_exp_grid_stops_trials_at_rungs_and_never_the_best(tmp_path, launcher):
    log = tmp_path / "epochs.jsonl"
    launch = LAUNCHERS[launcher]
    done = sweep(tmp_path, "hydra/sweeper=exp_grid", *launch, *ASHA_9, "+q=range(0,9)", f"+behave.log={log}", "+behave.sleep=0.01")
    assert done.returncode == 0, done.stderr[-3000:]
    sweep_dir = tmp_path / "sweep"
    rows = {int(r["q"]): r for r in csv_rows(sweep_dir / "exp_results.csv")}
    assert rows[0]["exp.status"] == "completed" and rows[0]["exp.steps"] == "9" and float(rows[0]["exp.result"]) == pytest.approx(10 / 9)
    pruned = [q for q, r in rows.items() if r["exp.status"] == "pruned"]
    assert pruned and all(rows[q]["exp.status"] == "completed" for q in rows if q not in pruned)
    epochs = trained(log)
    for q, row in rows.items():
        assert epochs[q] == int(row["exp.steps"])  # the results say how far each trial trained
        if q in pruned:
            assert epochs[q] in (1, 3)  # a stopped trial ran no epoch past its rung
            assert float(row["exp.result"]) == pytest.approx(q + 10 / epochs[q])  # its last report is its result
    entries = journal(sweep_dir)
    assert [e["continue"] for e in entries] == replayed(asha(), entries)  # every decision is ASHA's
    assert {(e["trial"], e["rung"]) for e in entries if not e["continue"]} == {(f"{q}:1", [1, 3].index(epochs[q])) for q in pruned}
    curves = csv_rows(sweep_dir / "exp_curves.csv")
    assert list(curves[0]) == ["exp.job_num", "exp.step", "exp.value", "accuracy", "epoch_seconds"]
    assert len(curves) == sum(epochs.values())  # one row per report, as it arrived
    by_job = {int(r["exp.job_num"]): int(r["q"]) for r in rows.values()}
    assert {(by_job[int(c["exp.job_num"])], int(c["exp.step"])) for c in curves} == {
        (q, e) for q in epochs for e in range(1, epochs[q] + 1)
    }
    assert f"{len(pruned)} pruned" in done.stdout + done.stderr
    assert not list((sweep_dir / ".exp_jobs" / "reports").iterdir())  # channels and decision files went with each job


def test_asha_with_exp_gopt_tells_pruned_trials_and_reports_the_best_completed_one(tmp_path):
    done = sweep(
        tmp_path,
        "hydra/sweeper=exp_gopt",
        *ASHA_9,
        "+q=interval(0.0,9.0)",
        "hydra.sweeper.n_trials=14",
        "hydra.sweeper.n_initial_points=6",
        "hydra.sweeper.seed=3",
        "+behave.return_none=true",  # the last report is a completed job's result
        "hydra.sweeper.plot=true",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(tmp_path / "sweep" / "opt_configurations.csv")
    assert len(rows) == 14 and {r["exp.status"] for r in rows} == {"completed", "pruned"}
    for r in rows:
        assert float(r["exp.evaluation"]) == pytest.approx(float(r["q"]) + 10 / float(r["exp.steps"]))
    completed = [r for r in rows if r["exp.status"] == "completed"]
    summary = (tmp_path / "sweep" / "optimization_results.yaml").read_text()
    import yaml

    best = yaml.safe_load(summary)
    assert best["best_value"] == pytest.approx(min(float(r["exp.evaluation"]) for r in completed))
    assert best["n_pruned"] == len(rows) - len(completed)
    assert (tmp_path / "sweep" / "opt_curves.png").stat().st_size > 10_000  # the learning curves, pruned ones apart


def test_maximize_mirrors_minimize(tmp_path):
    logs = {}
    for direction, negate in (("minimize", "false"), ("maximize", "true")):
        logs[direction] = tmp_path / f"{direction}.jsonl"
        done = sweep(
            tmp_path,
            "hydra/sweeper=exp_grid",
            *ASHA_9,
            f"hydra.sweeper.direction={direction}",
            "+q=range(0,9)",
            f"+behave.negate={negate}",
            f"+behave.log={logs[direction]}",
            name=direction,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    assert trained(logs["maximize"]) == trained(logs["minimize"])
    assert trained(logs["maximize"])[0.0] == 9  # the best score is never stopped


def test_exp_gopt_without_a_pruner_plots_the_learning_curves_it_recorded(tmp_path):
    done = sweep(
        tmp_path, "hydra/sweeper=exp_gopt", "+q=interval(0.0,9.0)", "+epochs=3", "hydra.sweeper.n_trials=3", "hydra.sweeper.plot=true"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(csv_rows(tmp_path / "sweep" / "opt_curves.csv")) == 9
    assert (tmp_path / "sweep" / "opt_curves.png").stat().st_size > 10_000
    assert "no learning-curve plot" not in done.stderr


@pytest.mark.parametrize("pruning", [[*ASHA_9, "hydra.sweeper.n_startup_trials=2"], ["+epochs=9"]], ids=["asha", "no-pruner"])
def test_nan_ends_the_trial_as_diverged_at_once(tmp_path, pruning):
    log = tmp_path / "epochs.jsonl"
    done = sweep(tmp_path, "hydra/sweeper=exp_grid", *pruning, "+q=range(0,2)", "+behave.nan_at=2", f"+behave.log={log}")
    assert done.returncode == 1  # every job failed
    rows = csv_rows(tmp_path / "sweep" / "exp_results.csv")
    assert [r["exp.status"] for r in rows] == ["failed", "failed"] and [r.get("exp.steps", "2") for r in rows] == ["2", "2"]
    assert all("diverged at step 2 (value nan)" in r["exp.error"] for r in rows)
    assert trained(log) == {0.0: 2, 1.0: 2}  # nothing trained after the NaN


def test_a_bad_report_fails_its_job_with_the_reason(tmp_path):
    done = sweep(tmp_path, "hydra/sweeper=exp_grid", *ASHA_9, "+q=range(0,3)", "+behave.bad=abc")
    rows = csv_rows(tmp_path / "sweep" / "exp_results.csv")
    failed = [r for r in rows if r["exp.status"] == "failed"]
    assert failed and all("report(): value must be a number, got 'abc'" in r["exp.error"] for r in failed), (rows, done.stderr[-2000:])


def stops(sweep_dir: Path) -> Dict[str, dict]:
    """The journal's stop decision of each trial the pruner stopped, by trial key."""
    found: Dict[str, dict] = {}
    for entry in journal(sweep_dir):
        assert entry["trial"] not in found, f"a rung of {entry['trial']} was judged after its stop: {entry}"
        if not entry["continue"]:
            found[entry["trial"]] = entry
    return found


def assert_stopped_trials_are_pruned(sweep_dir: Path, results: str = "exp_results.csv", value: str = "exp.result") -> List[Dict[str, str]]:
    """Every trial the pruner stopped is pruned, with the step and value it was stopped at; none is completed
    with what its job returned. Returns the rows."""
    rows = csv_rows(sweep_dir / results)
    stopped = stops(sweep_dir)
    assert stopped, "the pruner stopped no trial: the test shows nothing"
    by_key = {f"{r['exp.id']}:{r.get('exp.run', 1)}": r for r in rows}
    for key, entry in stopped.items():
        row = by_key[key]
        assert (row["exp.status"], row["exp.steps"], float(row[value])) == ("pruned", str(entry["step"]), entry["value"]), row
    assert all(r["exp.status"] == "completed" for key, r in by_key.items() if key not in stopped)
    return rows


@pytest.mark.parametrize(
    "behave,returned",
    [("+behave.swallow=-1000", True), ("+behave.thread=true", True), ("+behave.catch=true", False)],
    ids=["except-Exception-returns", "report-in-a-thread", "report-after-Pruned"],
)
def test_a_stopped_trial_is_pruned_whatever_its_job_returns(tmp_path, behave, returned):
    """The docs promise that a pruned trial is never best: a job that catches Pruned (a broad ``except``
    around the loop) and returns -1000, or whose report() runs in a thread while the job returns -1000, is
    still the pruned trial the sweep stopped. A report after Pruned raises Pruned again."""
    done = sweep(tmp_path, "hydra/sweeper=exp_grid", *ASHA_9, "+q=range(0,4)", behave)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = assert_stopped_trials_are_pruned(tmp_path / "sweep")
    assert "-1000" not in {r["exp.result"] for r in rows if r["exp.status"] == "completed"}
    assert ("recorded as pruned" in done.stdout + done.stderr) is returned


def test_exp_gopt_never_takes_a_stopped_trial_that_returned_a_better_value_as_best(tmp_path):
    done = sweep(
        tmp_path,
        "hydra/sweeper=exp_gopt",
        *ASHA_9,
        "+q=interval(0.0,9.0)",
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.n_initial_points=8",
        "hydra.sweeper.seed=3",
        "+behave.swallow=-1000",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = assert_stopped_trials_are_pruned(tmp_path / "sweep", "opt_configurations.csv", "exp.evaluation")
    import yaml

    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    completed = [float(r["exp.evaluation"]) for r in rows if r["exp.status"] == "completed"]
    assert best["best_value"] == min(completed) and best["best_value"] > 0
    assert best["n_pruned"] == len(rows) - len(completed)


ONE_SLOT = {
    "exp_local": ["hydra/launcher=exp_local", "hydra.launcher.workers=1"],
    "exp_slurm": [
        "hydra/launcher=exp_slurm",
        "hydra.launcher.partition=debug",
        "hydra.launcher.timeout_min=5",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.poll_interval_s=0.5",
        "hydra.launcher.array_parallelism=1",
    ],
}


@pytest.mark.parametrize("launcher", sorted(ONE_SLOT))
def test_a_stopped_job_that_goes_on_is_ended_and_its_slot_freed(tmp_path, request, launcher):
    """A job that catches Pruned and trains on for two minutes is ended by the sweep (exp_local kills its
    worker's tree, exp_slurm cancels it): the next job takes its slot long before the stopped one would end."""
    if launcher == "exp_slurm":
        request.getfixturevalue("slurm")  # a real SLURM on localhost, or the test is skipped
    log = tmp_path / "epochs.jsonl"
    linger = 120
    options = [*ONE_SLOT[launcher], "+q=range(0,3)", f"+behave.linger={linger}", f"+behave.log={log}"]
    done = sweep(tmp_path, "hydra/sweeper=exp_grid", *ASHA_9, *options, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = assert_stopped_trials_are_pruned(tmp_path / "sweep")
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    lingered = {e["lingers"]: e["at"] for e in entries if "lingers" in e}
    assert lingered and set(lingered) == {float(r["q"]) for r in rows if r["exp.status"] == "pruned"}
    first_epochs = {e["q"]: e["at"] for e in entries if e.get("epoch") == 1}
    for q, since in lingered.items():
        if q + 1 in first_epochs:  # one worker: the next configuration ran after this one, in its slot
            assert first_epochs[q + 1] < since + linger, "the next job waited for the stopped one to end"
    assert "ending it" in done.stdout + done.stderr


LATE_THREAD_APP = """
import threading, time
from pathlib import Path
import hydra
from exp_compat import report


def wait_for(path):
    deadline = time.monotonic() + 120
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never came"
        time.sleep(0.01)


@hydra.main(version_base=None, config_path=None, config_name=None)
def main(cfg):
    flags = Path(cfg.flags)
    if cfg.q == 0:
        def late():  # reports once the next job runs in this process, where the environment names that job
            wait_for(flags / "next-started")
            for step in range(100, 105):
                report(step, 12345.0)
            (flags / "late-done").touch()

        threading.Thread(target=late, daemon=True).start()
        for step in range(1, 4):
            report(step, 1.0 / step)
        return 1.0
    (flags / "next-started").touch()
    wait_for(flags / "late-done")
    for step in range(1, 4):
        report(step, 2.0 / step)
    return 2.0


if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("launcher", [["hydra/launcher=exp_local", "hydra.launcher.workers=1"], []], ids=["exp_local", "basic"])
def test_a_thread_left_running_by_a_job_never_reports_into_the_next_job(tmp_path, launcher):
    (tmp_path / "late_app.py").write_text(LATE_THREAD_APP)
    flags = tmp_path / "flags"
    flags.mkdir()
    command = [sys.executable, str(tmp_path / "late_app.py"), "-m", "hydra/sweeper=exp_grid", "+q=range(0,2)", f"+flags={flags}"]
    done = run([*command, *launcher, f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (flags / "late-done").exists()
    curves = [(c["exp.job_num"], c["exp.step"], c["exp.value"]) for c in csv_rows(tmp_path / "sweep" / "exp_curves.csv")]
    assert sorted(curves) == sorted([("0", str(s), str(1.0 / s)) for s in range(1, 4)] + [("1", str(s), str(2.0 / s)) for s in range(1, 4)])
    assert "came from a thread started before this job (or from a job that has ended): dropped" in done.stdout + done.stderr


def test_a_pruned_trial_is_never_best_even_with_a_better_value(tmp_path):
    """The loss grows with training (``q + epoch``), so the trials stopped at early rungs hold better values
    than any completed one: exp_gopt's best is still the best completed trial."""
    options = ["+q=interval(0.0,3.0)", "hydra.sweeper.n_trials=8", "hydra.sweeper.n_initial_points=8", "hydra.sweeper.seed=3"]
    done = sweep(tmp_path, "hydra/sweeper=exp_gopt", *ASHA_9, *options, "+behave.overfit=true")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = assert_stopped_trials_are_pruned(tmp_path / "sweep", "opt_configurations.csv", "exp.evaluation")
    import yaml

    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    completed = [float(r["exp.evaluation"]) for r in rows if r["exp.status"] == "completed"]
    assert best["best_value"] == min(completed)
    assert min(float(r["exp.evaluation"]) for r in rows if r["exp.status"] == "pruned") < best["best_value"]  # the test shows something


@pytest.mark.parametrize(
    "launcher,method",
    [(["hydra/launcher=exp_local", "hydra.launcher.workers=2"], "fork"), (["hydra/launcher=exp_local"], "spawn"), ([], "spawn")],
    ids=["fork-on-exp_local", "spawn-on-exp_local", "spawn-on-basic"],
)
def test_reports_from_child_processes_belong_to_the_jobs_trial(tmp_path, launcher, method):
    """Each epoch's report comes from a new child process (as from DataLoader workers). The child at a rung
    hears the decision; once the trial is stopped, every later child raises Pruned at its report, whatever
    the job does; the journal judges each rung of a trial once and nothing after its stop; steps stay integers."""
    log = tmp_path / "epochs.jsonl"
    done = sweep(tmp_path, "hydra/sweeper=exp_grid", *ASHA_9, *launcher, "+q=range(0,4)", f"+behave.child={method}", f"+behave.log={log}")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = assert_stopped_trials_are_pruned(tmp_path / "sweep")
    heard: Dict[float, List[int]] = {}
    for entry in map(json.loads, log.read_text().splitlines()):
        if "child_of" in entry:
            heard.setdefault(entry["child_of"], []).append(entry["pruned_at"])
            assert isinstance(entry["step"], int), entry  # Pruned carries the step as the job wrote it
    pruned = {float(r["q"]): int(r["exp.steps"]) for r in rows if r["exp.status"] == "pruned"}
    assert set(heard) == set(pruned)
    last = trained(log)  # the job goes on after the stop; exp_local may end it (PRUNED_GRACE_S) mid-epoch
    for q, step in pruned.items():  # from the stop on, every child that reported heard Pruned
        assert sorted(heard[q]) == list(range(step, step + len(heard[q]))) and last[q] - max(heard[q]) in (0, 1), (q, heard[q])
    curves = csv_rows(tmp_path / "sweep" / "exp_curves.csv")
    steps = {}
    for c in curves:
        steps.setdefault(c["exp.job_num"], []).append(c["exp.step"])
    for r in rows:  # nothing recorded past a stop; written as the job wrote them
        assert steps[r["exp.job_num"]] == [str(s) for s in range(1, int(r["exp.steps"]) + 1)]


@pytest.mark.parametrize(
    "options,message",
    [
        (["hydra.sweeper.min_resource=9"], "min_resource=9.0 must be smaller than max_resource=9.0"),
        (["hydra.sweeper.min_resource=0"], "min_resource must be a step > 0"),
        (["hydra.sweeper.reduction_factor=1"], "reduction_factor must be a whole number >= 2, got 1"),
        (["hydra.sweeper.n_warmup_steps=9"], "no step is left where a trial could be stopped"),
        (["hydra.sweeper.n_warmup_steps=-1"], "n_warmup_steps must be a step >= 0"),
        (["hydra.sweeper.n_startup_trials=-1"], "n_startup_trials must be a whole number >= 0"),
        (["hydra.sweeper.pruner=hyperband", "hydra.sweeper.max_resource=null"], "hyperband needs max_resource"),
        (["hydra.sweeper.pruner=asha2"], "hydra.sweeper.pruner"),  # Hydra's own error: the allowed names
        (["hydra.sweeper.reduction_factor=2.5"], "reduction_factor"),
    ],
)
@pytest.mark.parametrize("sweeper", ["exp_grid", "exp_gopt"])
def test_contradicting_pruner_options_fail_before_any_job(tmp_path, options, message, sweeper):
    space = "+q=range(0,3)" if sweeper == "exp_grid" else "+q=interval(0.0,3.0)"
    done = sweep(tmp_path, f"hydra/sweeper={sweeper}", *ASHA_9, *options, space)
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "sweep").exists()


def test_a_sweep_killed_mid_way_resumes_with_every_trial_once_and_the_same_rungs(tmp_path, spawn):
    log = tmp_path / "epochs.jsonl"
    args = [*CURVE, "hydra/sweeper=exp_grid", "hydra/launcher=exp_local", "hydra.launcher.workers=2", *ASHA_9, "+q=range(0,12)"]
    args += [f"+behave.log={log}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    rung_journal = tmp_path / "sweep" / ".exp_jobs" / "rungs.jsonl"
    driver = spawn([*args, "+behave.sleep=0.1"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (rung_journal.exists() and len(rung_journal.read_text().splitlines()) >= 5):
        assert time.monotonic() < deadline and driver.poll() is None, "the sweep never reached 5 decisions"
        time.sleep(0.01)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = journal(tmp_path / "sweep")
    for directory in (tmp_path / "sweep", tmp_path / "sweep" / ".exp_jobs" / "reports"):  # a kill mid atomic write leaves
        (directory / ".tmp-killed").write_text("half")
    done = run([*args, "+behave.sleep=0.01", "hydra.sweeper.resume=true"], cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(tmp_path / "sweep" / "exp_results.csv")
    assert sorted(int(r["q"]) for r in rows) == list(range(12))  # each configuration finished exactly once
    after = journal(tmp_path / "sweep")
    assert after[: len(before)] == before  # nothing decided before the kill was decided again
    assert len({(e["trial"], e["rung"]) for e in after}) == len(after)
    assert [e["continue"] for e in after] == replayed(asha(), after)
    stops = {e["trial"]: e["step"] for e in after if not e["continue"]}
    for r in rows:
        if f"{r['q']}:1" in stops:
            assert (r["exp.status"], int(r["exp.steps"])) == ("pruned", stops[f"{r['q']}:1"])
        else:
            assert (r["exp.status"], r["exp.steps"]) == ("completed", "9")
    assert trained(log)[0.0] == 9
    assert not list((tmp_path / "sweep" / ".exp_jobs" / "reports").iterdir())  # the killed jobs' channels went too
    assert not (tmp_path / "sweep" / ".tmp-killed").exists()


def test_a_plain_exp_module_reports_under_exp_compat_run_and_gopt(tmp_path, exp_compat):
    """EXP's commands pass Hydra overrides after '--': a plain run(**kwargs) module that reports is pruned."""
    (tmp_path / "runnable.py").write_text(
        "from exp_compat import report\n\n"
        "def run(q=0, **kwargs):\n"
        "    for epoch in range(1, 10):\n"
        "        report(epoch, q + 10.0 / epoch)\n"
        "    return q + 10.0 / 9\n"
    )
    (tmp_path / "space.conf").write_text('[q]\ntype = "range"\nbounds = [0, 5]\ndtype = "int"\n')
    pruning = ["--", "hydra.sweeper.pruner=asha", "hydra.sweeper.max_resource=9"]
    done = exp_compat("run", "-p", "space.conf", "-m", "runnable.py", "-w", "2", *pruning)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {int(r["q"]): r for r in csv_rows(tmp_path / "exp_results.csv")}
    assert sorted(rows) == list(range(5)) and (rows[0]["exp.status"], rows[0]["exp.steps"]) == ("completed", "9")  # EXP: end excluded
    assert {r["exp.status"] for r in rows.values()} == {"completed", "pruned"}
    done = exp_compat("gopt", "-p", "space.conf", "-m", "runnable.py", "-n", "6", "-w", "2", "-o", "gopt", *pruning)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(tmp_path / "gopt" / "opt_configurations.csv")
    assert len(rows) == 6 and all(r["exp.steps"] in ("1", "3", "9") for r in rows) and "pruned" in {r["exp.status"] for r in rows}


@pytest.mark.parametrize("pruned", [True, False], ids=["asha", "no-pruner"])
@pytest.mark.parametrize("where", ["same-machine", "other-network-namespace"])
def test_a_requeued_job_reporting_its_steps_again_counts_once(tmp_path, where, pruned):
    """A requeued SLURM job is the same job again (same channel), from its first step: the first value at a
    step stands, the curves get each step once, and each rung keeps its first decision (without a pruner:
    the curves alone, and the result is the first attempt's). In another network namespace (as on another
    host) no bell rings either way: both sides find the files by looking."""
    prefix = []
    if where == "other-network-namespace":
        if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
            pytest.skip("unshare --net needs root")
        prefix = ["unshare", "--net"]
    from hydra_plugins.exp_sweeper._early_stopping import EarlyStopping

    early = EarlyStopping(asha() if pruned else None, 1.0, tmp_path, "exp", resume=False)
    rival = early.watch(0, {"id": 0, "run": 1})
    env = early.watch(1, {"id": 1, "run": 1})
    code = (
        "import sys\nfrom exp_compat import Pruned, report\n"
        "for step in range(1, 6):\n"
        "    try:\n"
        "        report(step, float(sys.argv[1]) + 1.0 / step)\n"
        "    except Pruned:\n"
        "        print('pruned', step); sys.exit(0)\n"
        "print('completed')\n"
    )

    def attempt(channel: dict, quality: str) -> str:
        done = subprocess.run([*prefix, sys.executable, "-c", code, quality], env={**os.environ, **channel}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    try:
        assert attempt(rival, "5") == "completed"  # alone at every rung
        assert attempt(env, "0") == "completed"  # better than the rival at rungs 1 and 3
        assert attempt(env, "9") == "completed"  # requeued: worse values now, but its decisions were taken
        finished = {}
        for job in (0, 1):
            finished[job] = early.finished(job)
            early.forget(job, {"id": job, "run": 1})  # recorded
    finally:
        early.close()
    assert (finished[1].step, finished[1].value) == (5.0, 0.2)  # the first attempt's last report
    curves = csv_rows(tmp_path / "exp_curves.csv")
    assert [(c["exp.job_num"], c["exp.step"]) for c in curves if c["exp.job_num"] == "1"] == [("1", str(s)) for s in range(1, 6)]
    assert all(float(c["exp.value"]) < 5 for c in curves if c["exp.job_num"] == "1")  # the first attempt's values
    assert not list((tmp_path / ".exp_jobs" / "reports").iterdir())  # every channel and decision removed
    if not pruned:
        assert not (tmp_path / ".exp_jobs" / "rungs.jsonl").exists()
        return
    assert [(e["trial"], e["rung"], e["continue"]) for e in journal(tmp_path)] == [
        ("0:1", 0, True),
        ("0:1", 1, True),
        ("1:1", 0, True),
        ("1:1", 1, True),
    ]


def test_a_stopped_trial_stays_stopped_at_the_rungs_other_processes_reported(tmp_path):
    """Two processes of one job (DataLoader workers) reported rung 0 and rung 1 before the sweep read either: the
    pruner judges rung 0 (stop) and never rung 1, which is answered stop; the stop mark tells every process."""
    from hydra_plugins.exp_sweeper._early_stopping import EarlyStopping

    early = EarlyStopping(asha(), 1.0, tmp_path, "exp", resume=False)
    early.watch(0, {"id": 0, "run": 1})
    early.watch(1, {"id": 1, "run": 1})
    channels = tmp_path / ".exp_jobs" / "reports"
    try:
        lines = {0: [(1, 1.0, 0)], 1: [(1, 9.0, 0), (3, 0.5, 1)]}  # job 1: worse than job 0 at rung 0, the best at rung 1
        for job, reports in lines.items():
            text = "".join(json.dumps({"step": step, "value": value, "metrics": {}, "rung": rung}) + "\n" for step, value, rung in reports)
            (channels / f"{job}.jsonl").write_text(text)
            early.finished(job)
        assert early.stopped({"id": 1, "run": 1}) == (1, 9.0)
        assert json.loads((channels / "1.stop").read_text()) == {"step": 1, "value": 9.0}
        assert (channels / "1.1.decision").read_text() == "stop"
        early.forget(1, {"id": 1, "run": 1})
        assert not list(channels.glob("1.*"))
    finally:
        early.close()
    assert [(e["trial"], e["rung"], e["continue"]) for e in journal(tmp_path)] == [("0:1", 0, True), ("1:1", 0, False)]


def test_jobs_that_have_not_reported_are_looked_at_rarely(tmp_path):
    """A batch launcher's chunk (1,000 jobs, most queued) must not make the sweep's reader stat every file every
    few milliseconds: it took half a core, beside the job running in the same process (Hydra's basic launcher).
    The rule: a job that has not reported is looked at no more than ten times a second."""
    from hydra_plugins.exp_sweeper._early_stopping import EarlyStopping

    early = EarlyStopping(asha(), 1.0, tmp_path, "exp", resume=False)
    reads = []
    original = early._read
    early._read = lambda job_num, watched, decide=True: reads.append(job_num) or original(job_num, watched, decide)
    try:
        began = time.monotonic()
        for job in range(1000):
            early.watch(job, {"id": job, "run": 1})
        deadline = time.monotonic() + 60
        while reads.count(999) < 4 and time.monotonic() < deadline:  # the last job watched, looked at 4 times
            time.sleep(0.01)
        looks, seconds = reads.count(999), time.monotonic() - began
    finally:
        early.close()
    assert 4 <= looks <= 10 * seconds + 1, f"a quiet job looked at {looks} times in {seconds:.2f} s"


# -- exp-compat rungs: how early to cut, replayed on an earlier sweep's curves ---------------------------------


def rung_table(output: str) -> Dict[tuple, List[str]]:
    """The rows of ``exp-compat rungs``'s table, by (pruner, min_resource)."""
    rows = [line.strip("|").split(" | ") for line in output.splitlines() if line.startswith("| ") and "---" not in line]
    return {(cells[0].strip(), cells[1].strip()): [c.strip() for c in cells[2:]] for cells in rows[1:]}


def test_rungs_replays_the_pruners_on_a_sweeps_own_curves(tmp_path, exp_compat):
    done = sweep(tmp_path, "hydra/sweeper=exp_grid", "+q=range(0,9)", "+epochs=9")  # no pruner: every curve whole
    assert done.returncode == 0, done.stderr[-3000:]
    checked = exp_compat("rungs", str(tmp_path / "sweep" / "exp_curves.csv"), "--orders", "50")
    assert checked.returncode == 0, checked.stderr
    table = rung_table(checked.stdout)
    assert list(table) == [("none", "-"), ("asha", "1"), ("asha", "3"), ("hyperband", "1")]
    assert table[("asha", "1")][0] == "1, 3" and table[("asha", "3")][0] == "3"
    # q + 10 / epoch ranks the trials by q at every step: every setting keeps the best (q=0, 10/9 at the end)
    assert all(row[2] == "100%" and float(row[3]) == pytest.approx(10 / 9, abs=1e-5) for row in table.values())
    assert table[("none", "-")][1] == "100%" and int(table[("asha", "1")][1].rstrip("%")) < int(table[("asha", "3")][1].rstrip("%")) < 100
    assert "suggestion: pruner=asha min_resource=1:" in checked.stdout and "warning" not in checked.stdout
    pruned = sweep(tmp_path, "hydra/sweeper=exp_grid", *ASHA_9, "hydra.sweeper.n_startup_trials=3", "+q=range(0,9)", name="pruned")
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    survivors = exp_compat("rungs", str(tmp_path / "pruned" / "exp_curves.csv"), "--orders", "5")
    assert survivors.returncode == 0 and "these curves are its survivors" in survivors.stdout, survivors.stderr


def test_rungs_finds_early_values_that_rank_trials_backwards(tmp_path, exp_compat):
    """Nine trials whose ranking at steps 1-8 is the reverse of their final one: cutting at step 1 or 3 loses the
    best, as a large learning rate that leads early and trails at the end would; --maximize mirrors it."""
    for name, sign, flags in (("min.csv", 1, []), ("max.csv", -1, ["--maximize"])):
        lines = ["job_num,step,value"]
        lines += [f"{j},{e},{sign * (j if e == 9 else 10 - j)}" for j in range(9) for e in range(1, 10)]
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        checked = exp_compat("rungs", name, "--orders", "100", *flags)
        assert checked.returncode == 0, checked.stderr
        table = rung_table(checked.stdout)
        kept = {key: int(row[2].rstrip("%")) for key, row in table.items()}
        assert kept[("none", "-")] == 100 and kept[("asha", "1")] < 50 and kept[("asha", "3")] < 50
        assert "no setting kept the best trial in 90% of the orders" in checked.stdout


def test_rungs_judges_trials_at_max_resource_not_after(tmp_path, exp_compat):
    """Curves of 20 steps that rank by j up to step 9 and backwards after it: complete at --max-resource 9, every
    setting keeps the best (j=0, 1/9 at step 9); judged at step 20, none does."""
    lines = ["job_num,step,value"] + [f"{j},{e},{(j if e <= 9 else 10 - j) + 1 / e}" for j in range(6) for e in range(1, 21)]
    (tmp_path / "long.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    at_nine = rung_table(exp_compat("rungs", "long.csv", "--max-resource", "9", "--orders", "20").stdout)
    assert {row[2] for row in at_nine.values()} == {"100%"} and float(at_nine[("none", "-")][3]) == pytest.approx(1 / 9, abs=1e-5)
    at_end = rung_table(exp_compat("rungs", "long.csv", "--orders", "20").stdout)
    assert float(at_end[("none", "-")][3]) == pytest.approx(5.05) and int(at_end[("asha", "9")][2].rstrip("%")) < 50


@pytest.mark.parametrize(
    "content,args,words",
    [
        (None, [], "no such file"),
        ("a,b\n1,2\n", [], "not a curves file: no column exp.job_num, exp.step, exp.value"),
        ("job_num,step,value\n0,1,0.5\n0,2,abc\n", [], "line 3: step and value must be numbers"),
        ("job_num,step,value\n0,1,0.5\n0,2,0.4\n1,1,0.6\n", [], "1 of 2 trials reported up to step 2; at least 3 whole curves"),
        ("job_num,step,value\n", [], "no reports in it"),
        ("job_num,step,value\n0,1,0.5\n", ["--reduction-factor", "1"], "--reduction-factor must be a whole number >= 2"),
        ("job_num,step,value\n0,1,0.5\n", ["--max-resource", "-3"], "--max-resource must be a step > 0"),
        ("job_num,step,value\n0,1,0.5\n", ["--orders", "0"], "--orders must be at least 1"),
    ],
    ids=["missing", "not-curves", "not-a-number", "too-few-whole", "empty", "factor", "max-resource", "orders"],
)
def test_rungs_says_what_is_wrong_with_its_input(tmp_path, exp_compat, content, args, words):
    if content is not None:
        (tmp_path / "c.csv").write_text(content, encoding="utf-8")
    done = exp_compat("rungs", "c.csv", *args)
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr, done.stderr
