"""exp_gopt with several objectives and outcome constraints: real Hydra multiruns of tests/apps/objectives_app.py.

Every check of a Pareto set recomputes it here, from the results CSV, with a plain double loop.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from conftest import APPS, csv_rows, run

from hydra_plugins.exp_sweeper._objectives import Objectives, Scalarisation, hypervolume, non_dominated, parse_constraints
from hydra_plugins.exp_sweeper.config import Direction

SPACE = ("hydra/sweeper=exp_gopt", "+x=interval(0,2)", "+y=interval(0,1)", "hydra.sweeper.seed=1")


@pytest.fixture
def sweep(tmp_path):
    def call(*overrides: str) -> subprocess.CompletedProcess:
        args = [sys.executable, str(APPS / "objectives_app.py"), "-m", *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"]
        return run(args, cwd=tmp_path, timeout=300)

    return call


def results(tmp_path):
    return csv_rows(tmp_path / "sweep" / "opt_configurations.csv"), yaml.safe_load(
        (tmp_path / "sweep" / "optimization_results.yaml").read_text()
    )


def pareto(points, signs):
    """Indices of the points that no other point dominates (signs: 1 minimise, -1 maximise)."""
    signed = [[s * v for s, v in zip(signs, p)] for p in points]
    return [
        i for i, p in enumerate(signed) if not any(all(a <= b for a, b in zip(q, p)) and any(a < b for a, b in zip(q, p)) for q in signed)
    ]


def test_two_objectives_returned_as_a_list_give_the_pareto_set_of_the_results(tmp_path, sweep):
    done = sweep(*SPACE, "hydra.sweeper.direction=[minimize,minimize]", "hydra.sweeper.n_trials=16", "hydra.sweeper.n_initial_points=5")
    assert done.returncode == 0, done.stderr[-3000:]
    rows, summary = results(tmp_path)
    assert list(rows[0]) == [
        "x",
        "y",
        "exp.id",
        "exp.values_0",
        "exp.values_1",
        "exp.run",
        "exp.job_num",
        "exp.status",
        "exp.duration_s",
        "exp.error",
    ]
    assert len(rows) == 16 and all(r["exp.status"] == "completed" for r in rows)
    for r in rows:  # the values are what the task returned for these parameters
        x, y = float(r["x"]), float(r["y"])
        assert (float(r["exp.values_0"]), float(r["exp.values_1"])) == (x, (1 - x) ** 2 + y)
    points = [(float(r["exp.values_0"]), float(r["exp.values_1"])) for r in rows]
    expected = [points[i] for i in pareto(points, [1, 1])]
    assert sorted(tuple(s["values"]) for s in summary["solutions"]) == sorted(expected)
    assert all(s["params"]["x"] == s["values"][0] for s in summary["solutions"])
    assert "best_value" not in summary and summary["n_trials"] == 16
    # the model-based trials after the 5 random ones go to the front (y = 0), as the scalarisations ask
    assert sum(float(r["y"]) < 0.05 for r in rows[5:]) >= 6


@pytest.mark.parametrize("launcher", ["basic", "exp_slurm"])
def test_a_dict_with_mixed_directions_and_a_constraint(tmp_path, sweep, request, launcher):
    """On Hydra's basic launcher (blocking batches) and on exp_slurm (asynchronous, every job a SLURM job; one in
    flight, so that the trials, and whether the constraint changes the Pareto set, do not depend on which of two
    SLURM jobs ends first)."""
    if launcher == "exp_slurm":
        request.getfixturevalue("slurm")  # skips where no local SLURM can run
    from test_slurm import EXP_SLURM

    done = sweep(
        *SPACE,
        *([*EXP_SLURM, "hydra.launcher.array_parallelism=1"] if launcher == "exp_slurm" else ["hydra/launcher=basic"]),
        "+form=dict",
        "hydra.sweeper.direction=[minimize,maximize]",
        "hydra.sweeper.objective=[latency_ms,accuracy]",
        '+hydra.sweeper.constraints.size="<= 0.5"',
        "hydra.sweeper.n_trials=16",
        "hydra.sweeper.n_initial_points=8",
        "hydra.sweeper.plot=true",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows, summary = results(tmp_path)
    assert list(rows[0])[:7] == ["x", "y", "exp.id", "latency_ms", "accuracy", "size", "exp.feasible"]
    for r in rows:
        assert r["exp.feasible"] == str(float(r["x"]) + float(r["y"]) <= 0.5) and float(r["size"]) == float(r["x"]) + float(r["y"])
    feasible = [r for r in rows if r["exp.feasible"] == "True"]
    assert feasible and len(feasible) < len(rows)  # the random start breaks the constraint now and then
    points = [(float(r["latency_ms"]), float(r["accuracy"])) for r in feasible]
    expected = [points[i] for i in pareto(points, [1, -1])]
    assert sorted(tuple(s["values"]) for s in summary["solutions"]) == sorted(expected)
    everything = [(float(r["latency_ms"]), float(r["accuracy"])) for r in rows]
    assert sorted(expected) != sorted(everything[i] for i in pareto(everything, [1, -1]))  # the constraint changed the set
    assert summary["n_feasible"] == len(feasible)
    for plot in ("opt_convergence.png", "opt_pareto.png"):
        assert (tmp_path / "sweep" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_two_objectives_where_no_trial_is_feasible_end_with_an_empty_pareto_set(tmp_path, sweep):
    done = sweep(
        *SPACE,
        "+form=dict",
        "hydra.sweeper.direction=[minimize,maximize]",
        "hydra.sweeper.objective=[latency_ms,accuracy]",
        '+hydra.sweeper.constraints.size=">= 10"',  # x + y is at most 3
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.n_initial_points=4",
        "hydra.sweeper.plot=true",
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    rows, summary = results(tmp_path)
    assert len(rows) == 8 and all(r["exp.status"] == "completed" and r["exp.feasible"] == "False" for r in rows)
    assert summary["solutions"] == [] and summary["n_feasible"] == 0 and summary["n_trials"] == 8
    assert "no trial met the constraints" in done.stdout + done.stderr
    assert "no feasible completed trial, no plots" in done.stdout + done.stderr and not list((tmp_path / "sweep").glob("*.png"))


def test_one_objective_under_a_constraint_reports_the_best_feasible_trial(tmp_path, sweep):
    done = sweep(
        *SPACE,
        "+form=dict",
        "hydra.sweeper.objective=latency_ms",
        "+hydra.sweeper.constraints.size='>= 1.5'",  # cuts off the unconstrained optimum, x = 1, y = 0
        "hydra.sweeper.n_trials=20",
        "hydra.sweeper.n_initial_points=6",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows, summary = results(tmp_path)
    assert list(rows[0])[:6] == ["x", "y", "exp.id", "exp.evaluation", "size", "exp.feasible"]
    feasible = [r for r in rows if r["exp.feasible"] == "True"]
    assert summary["best_value"] == min(float(r["exp.evaluation"]) for r in feasible)
    assert min(float(r["exp.evaluation"]) for r in rows) < summary["best_value"]  # an infeasible trial was better
    assert float(summary["best_params"]["x"]) + float(summary["best_params"]["y"]) >= 1.5
    assert summary["best_value"] < 0.3  # the constrained optimum is 0.25 (x = 1.5, y = 0), on the edge
    # the model-based trials go to the constraint's edge, where the optimum is, or stay feasible (random: ~60%)
    assert sum(abs(float(r["size"]) - 1.5) < 0.1 or r["exp.feasible"] == "True" for r in rows[6:]) >= 12


def test_an_array_return_and_a_warm_start(tmp_path, sweep):
    done = sweep(*SPACE, "+form=array", "hydra.sweeper.direction=[minimize,minimize]", "hydra.sweeper.n_trials=6")
    assert done.returncode == 0, done.stderr[-3000:]
    (tmp_path / "earlier.csv").write_bytes((tmp_path / "sweep" / "opt_configurations.csv").read_bytes())
    done = sweep(
        *SPACE,
        "hydra.sweeper.direction=[minimize,minimize]",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.n_initial_points=3",
        "hydra.sweeper.warm_start=earlier.csv",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows, summary = results(tmp_path)
    assert len(rows) == 3  # the earlier trials were told, not run again
    earlier = [(float(r["exp.values_0"]), float(r["exp.values_1"])) for r in csv_rows(tmp_path / "earlier.csv")]
    mine = [(float(r["exp.values_0"]), float(r["exp.values_1"])) for r in rows]
    # the Pareto set is this sweep's own trials (docs/sweepers.md, warm_start), although earlier ones would stand in it
    assert sorted(tuple(s["values"]) for s in summary["solutions"]) == sorted(mine[i] for i in pareto(mine, [1, 1]))
    assert any(i >= len(mine) for i in pareto(mine + earlier, [1, 1]))
    assert all(point not in earlier for point in mine)


def test_bad_returns_are_failed_trials_with_clear_errors(tmp_path, sweep):
    done = sweep(
        "hydra/sweeper=exp_gopt",
        "+x=choice(0,1,2,3,4,5)",
        "+form=bad",
        "hydra.sweeper.direction=[minimize,maximize]",
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.n_initial_points=6",
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    rows, summary = results(tmp_path)
    errors = {r["x"]: r["exp.error"] for r in rows}
    assert errors == {
        "0": "bad return value: returned 1 values, expected 2 (one per direction)",
        "1": "bad return value: returned a dict (keys: loss), expected a list of 2 numbers (one per direction); "
        "to read a dict, set hydra.sweeper.objective to a list of 2 of its keys",
        "2": "bad return value: returned 'text', expected a list of 2 numbers (one per direction)",
        "3": "bad return value: objective 1: returned nan, expected a finite number",
        "4": "bad return value: returned a dict (keys: loss, latency_ms, size, accuracy), expected a list of 2 numbers "
        "(one per direction); to read a dict, set hydra.sweeper.objective to a list of 2 of its keys",
        "5": "",
    }
    assert summary["n_failed"] == 5 and [s["params"]["x"] for s in summary["solutions"]] == [5]
    done = sweep(
        "hydra/sweeper=exp_gopt",
        "+x=choice(0,1,4,5)",
        "+form=bad",
        "hydra.sweeper.direction=[minimize,minimize]",
        "hydra.sweeper.objective=[loss,latency_ms]",
        '+hydra.sweeper.constraints.size="<= 10"',
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_initial_points=4",
    )
    assert done.returncode == 1 and "every job failed" in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = {r["x"]: r["exp.error"] for r in csv_rows(tmp_path / "sweep" / "opt_configurations.csv")}
    assert errors["0"] == "bad return value: returned [0.0], expected a dict with the objective key 'loss'"
    assert errors["1"] == "bad return value: returned a dict without the objective key 'latency_ms' (keys: loss)"
    assert errors["4"] == "bad return value: returned 'big', expected a number"
    assert errors["5"] == "bad return value: returned [5.0, 16.0], expected a dict with the objective key 'loss'"


@pytest.mark.parametrize(
    "options,words",
    [
        (["hydra.sweeper.direction=[minimize,sideways]"], "direction must be minimize, maximize or a list of them"),
        (["hydra.sweeper.direction=[]"], "direction must be minimize, maximize or a list of them"),
        (["hydra.sweeper.direction=[minimize,minimize]", "hydra.sweeper.objective=[error]"], "give a list of 2 keys"),
        (["hydra.sweeper.direction=[minimize,minimize]", "hydra.sweeper.objective=error"], "give a list of 2 keys"),
        (["hydra.sweeper.direction=[minimize,minimize]", "hydra.sweeper.objective=[a,a]"], "names a key twice"),
        (["hydra.sweeper.objective=[a,b]"], "is a list, but there is one direction"),
        (["hydra.sweeper.objective=e", "+hydra.sweeper.constraints.size='< 3'"], "a constraint is '<= NUMBER' or '>= NUMBER'"),
        (["hydra.sweeper.objective=e", "+hydra.sweeper.constraints.size='<= big'"], "constraints.size='<= big'"),
        (["hydra.sweeper.objective=e", "+hydra.sweeper.constraints.size='<= inf'"], "a constraint is '<= NUMBER'"),
        (["+hydra.sweeper.constraints.size='<= 3'"], "set hydra.sweeper.objective to the key"),
        (["hydra.sweeper.direction=[minimize,minimize]", "hydra.sweeper.pruner=asha"], "a pruner ranks trials by one objective"),
        (
            ["hydra.sweeper.objective=e", "+hydra.sweeper.constraints.s='<= 3'", "hydra.sweeper.acquisition=LCB"],
            "acquisition=LCB with constraints",
        ),
        (["hydra.sweeper.objective=e", "+hydra.sweeper.constraints.s='<= 3'", "hydra.sweeper.pruner=asha"], "pruner=asha with constraints"),
        (["hydra.sweeper.direction=[minimize,minimize]", "hydra.sweeper.objective=[x,e]"], "columns ['x'] clash"),
        (["hydra.sweeper.direction=[minimize,minimize]", "hydra.sweeper.objective=[exp.a,e]"], "key 'exp.a' starts with 'exp.'"),
    ],
)
def test_bad_options_are_clear_errors_that_write_nothing(tmp_path, sweep, options, words):
    done = sweep(*SPACE, *options)
    assert done.returncode == 1 and words in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "sweep").exists()


def test_exp_grid_takes_one_direction(tmp_path, sweep):
    done = sweep("hydra/sweeper=exp_grid", "+x=choice(0,1)", "hydra.sweeper.direction=[minimize,maximize]")
    assert done.returncode == 1 and "exp_grid: hydra.sweeper.direction" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "sweep").exists()


def test_resume_after_sigkill_with_two_objectives_and_a_constraint_on_exp_local(tmp_path):
    record = tmp_path / "executions.jsonl"
    sweep_dir = tmp_path / "sweep"
    args = [
        sys.executable,
        str(APPS / "objectives_app.py"),
        "-m",
        *SPACE,
        "hydra/launcher=exp_local",
        "hydra.launcher.workers=2",
        "+form=dict",
        "hydra.sweeper.direction=[minimize,minimize]",
        "hydra.sweeper.objective=[loss,latency_ms]",
        '+hydra.sweeper.constraints.size="<= 1.5"',
        "hydra.sweeper.n_trials=14",
        "hydra.sweeper.n_initial_points=4",
        "+sleep=0.15",
        f"+record={record}",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    first = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results_csv = sweep_dir / "opt_configurations.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (results_csv.exists() and len(results_csv.read_text().splitlines()) >= 7):
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    kept = [(r["x"], r["y"]) for r in csv_rows(results_csv)]
    assert 6 <= len(kept) < 14
    executed_before = len(record.read_text().splitlines())
    done = subprocess.run([*args, "hydra.sweeper.resume=true"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = csv_rows(results_csv)
    assert len(rows) == 14 and len({(r["x"], r["y"]) for r in rows}) == 14 and [(r["x"], r["y"]) for r in rows[: len(kept)]] == kept
    again = [json.loads(line) for line in record.read_text().splitlines()[executed_before:]]
    assert not {(repr(a["x"]), repr(a["y"])) for a in again} & set(kept)  # finished trials did not run again
    assert all(r["exp.feasible"] == str(float(r["size"]) <= 1.5) for r in rows)
    points = [(float(r["loss"]), float(r["latency_ms"])) for r in rows if r["exp.feasible"] == "True"]
    summary = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert sorted(tuple(s["values"]) for s in summary["solutions"]) == sorted(points[i] for i in pareto(points, [1, 1]))


# -- the pieces, on hand-computed cases ------------------------------------------------------------


def test_constraints_parse_into_bounds():
    parsed = parse_constraints({"latency_ms": "<= 20", "accuracy": ">=0.9", "size": " <= -1e3 "})
    assert [(c.metric, c.upper, c.bound) for c in parsed] == [("latency_ms", True, 20.0), ("accuracy", False, 0.9), ("size", True, -1000.0)]
    assert [parsed[0].violation(25), parsed[0].violation(20), parsed[1].violation(0.5)] == [5.0, 0.0, pytest.approx(0.4)]
    for bad in ("< 20", "20", "<= nan", "=< 3", "<= 3 4", 20):
        with pytest.raises(ValueError, match="a constraint is"):
            parse_constraints({"m": bad})


def test_non_dominated_and_hypervolume_by_hand():
    points = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [2, 2], [6, 6]])
    assert non_dominated(points).tolist() == [True, True, True, False, False, False]  # equal rows: the first is kept
    # the staircase of (1,5), (2,2), (5,1) under the reference (6,6): 1*1 + 3*4 + 1*5 = 18
    assert hypervolume(points, [6, 6]) == 18.0
    assert hypervolume(points[:1], [6, 6]) == 5.0 and hypervolume([[7, 1]], [6, 6]) == 0.0
    assert hypervolume([[0, 0, 0]], [1, 2, 3]) == 6.0 and hypervolume([[0, 0, 0], [0.5, 0.5, 0.5]], [1, 1, 1]) == 1.0


def test_the_scalarisation_normalises_to_the_feasible_results_and_the_slacks_say_how_far_from_breaking():
    objectives = Objectives([Direction.minimize, Direction.maximize], ["loss", "acc"], parse_constraints({"ms": "<= 10", "acc": ">= 0.6"}))
    readings = [
        objectives.read({"loss": loss, "acc": acc, "ms": ms}) for loss, acc, ms in [(1, 0.5, 5), (2, 0.9, 8), (0, 1, 12), (3, 0.7, 9)]
    ]
    assert [r.feasible for r in readings] == [False, True, False, True]
    assert [objectives.slacks(r) for r in readings] == [
        [-5, pytest.approx(0.1)],
        [-2, pytest.approx(-0.3)],
        [2, -0.4],
        [-1, pytest.approx(-0.1)],
    ]
    scalarise = Scalarisation(objectives, seed=0)
    for _ in range(20):  # every weight vector: 0 at the feasible best of each objective, 1 at the front's worst
        scalarise.redraw(readings)
        told = [scalarise(r) for r in readings]
        w = scalarise.weights
        assert told[1] == 0  # loss 2 and acc 0.9: the best of both among the feasible, the whole front
        # loss 3 and acc 0.7: dominated, 1 and 0.2 beyond the front (whose extent is 0: divided by 1)
        assert told[3] == pytest.approx(max(w[0] * 1, w[1] * 0.2) + Scalarisation.RHO * (w[0] + w[1] * 0.2))
        assert told[2] < told[1]  # infeasible, but better in both: the objective's model sees it as it is


def test_the_proposer_keeps_away_from_what_breaks_a_constraint():
    """x in [0, 10], minimise -x under x <= 3: the proposals go to the constraint's edge (without the constraint's
    model, to 10), and some meet it within 0.1."""
    from skopt.space import Real

    from hydra_plugins.exp_sweeper._proposer import Proposer

    proposer = Proposer([Real(0.0, 10.0, name="x")], n_initial_points=5, seed=0)
    proposer.constrain(1)
    points = [[x] for x in (0.5, 2.0, 4.5, 7.0, 9.5)]
    proposer.tell(points, [-p[0] for p in points], [[p[0] - 3] for p in points])
    proposed = []
    for _ in range(8):
        (point,) = proposer.propose(1, pending=[])
        proposed.append(point[0])
        proposer.tell([point], [-point[0]], [[point[0] - 3]])
    assert sum(abs(x - 3) < 0.1 for x in proposed) >= 5 and max(x for x in proposed if x <= 3) > 2.9, proposed
    with pytest.raises(ValueError, match="constraint slacks told"):
        proposer.tell([[1.0]], [-1.0])


def test_a_missing_or_bad_constraint_metric_is_named():
    objectives = Objectives([Direction.minimize], "loss", parse_constraints({"size": "<= 3"}))
    with pytest.raises(ValueError, match="returned a dict without the constraint metric key 'size' \\(keys: loss\\)"):
        objectives.read({"loss": 1.0})
    with pytest.raises(ValueError, match="returned inf, expected a finite number"):
        objectives.read({"loss": 1.0, "size": float("inf")})
    assert objectives.read({"loss": 1.0, "size": 3}).feasible and not objectives.read({"loss": 1.0, "size": 3.5}).feasible
    assert Objectives([Direction.maximize], ["score"], []).keys == ["score"]  # a list of one key for one direction


def test_returns_that_are_not_a_list_of_numbers_are_refused_with_the_reason():
    objectives = Objectives([Direction.minimize, Direction.minimize], None, [])
    assert objectives.read(np.array([1.0, 2])).values == [1.0, 2.0] and objectives.read((1, 2.5)).values == [1.0, 2.5]
    for value, words in [
        (np.array(3.0), "expected a list of 2 numbers"),
        ({1, 2}, "expected a list of 2 numbers"),
        (iter([1, 2]), "expected a list of 2 numbers"),
        (np.ones((1, 2)), "returned 1 values, expected 2"),
        ([1, True], "objective 1: returned True, expected a number"),
        ([1, [2]], "objective 1: returned [2], expected a number"),
    ]:
        with pytest.raises(ValueError, match=re.escape(words)):
            objectives.read(value)


def test_parego_weights_are_its_evenly_spread_set_with_the_ends():
    from hydra_plugins.exp_sweeper._objectives import weight_lattice

    two, three = weight_lattice(2), weight_lattice(3)
    assert len(two) == 11 and len(three) == 15 and len(weight_lattice(4)) == 20
    assert np.allclose(two.sum(axis=1), 1) and np.allclose(three.sum(axis=1), 1)
    assert [0, 1] in two.tolist() and [1, 0] in two.tolist() and [0, 0, 1] in three.tolist()


def test_an_asynchronous_sweep_draws_new_weights_for_every_refit_and_fits_the_values_they_give():
    """Driven as the sweep loop drives it with slots (ask, prepare, one trial ends, tell, ask, ...): results are
    recorded as they arrive, so each refit must draw its weights even though nothing is left untold then."""
    from exp_compat import Space
    from hydra_plugins.exp_sweeper._gopt import GoptStrategy
    from hydra_plugins.exp_sweeper._outcome import Outcome
    from hydra_plugins.exp_sweeper._proposer import Proposer

    search = Space.from_mapping({n: {"type": "range", "bounds": [0.0, 1.0]} for n in ("a", "b")}).search()
    proposer = Proposer(search.dimensions, n_initial_points=4, seed=0)
    strategy = GoptStrategy(search, proposer, 24, Objectives([Direction.minimize, Direction.maximize], None, []), seed=0)
    drawn, running = set(), strategy.ask(3)
    while running:
        strategy.prepare()
        if strategy.fitting is not None:
            strategy.fitting.result()
            fitted = proposer.fitted
            if fitted is not None and fitted.n == len(proposer.y):  # the model saw the values of the current weights
                readings = [reading for _, reading, _ in strategy.readings][: fitted.n]
                assert proposer.y == pytest.approx([strategy.scalarisation(r) for r in readings])
                drawn.add(tuple(strategy.scalarisation.weights))
        trial = running.pop(0)
        a, b = trial.params["a"], trial.params["b"]
        strategy.tell(trial, Outcome("completed", value=[a + b, a * b]))
        running += strategy.ask(3 - len(running))
    strategy.close()
    assert len(drawn) >= 5, drawn
