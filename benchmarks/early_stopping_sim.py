"""Early stopping's search methods compared in one process, without Hydra: many seeds in minutes.

The same workload, space, budget and measures as ``early_stopping.py`` (which runs real sweeps, as users
type them), but each method's optimizer and pruner are driven directly: two slots take turns, one epoch
per turn, so every method sees the same order of events and a seed's run is reproducible. What it leaves
out is everything between the optimizer and the job (launcher, report channel, a background refit's
timing); use it to tell search methods apart on enough seeds, and ``early_stopping.py`` to confirm.

- exp_gopt without pruning (``--trials`` trials: the budget B), with ASHA (rungs 1, 3, 9; once per
  ``pruned_value``) and with Hyperband: exp_gopt's own ``GoptStrategy`` and pruners, as its sweep uses them;
  ``--min-resource N`` moves every pruner's first rung to epoch N;
- Optuna's TPE with its ``SuccessiveHalvingPruner`` and ``HyperbandPruner`` (ask and tell; skipped
  without Optuna).

    python benchmarks/early_stopping_sim.py [--workload mlp|sgd] [--seeds 20] [--first-seed 0] [--trials 20]
        [--only NAME ...] [--until 1|2|4] [--min-resource 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

for _library in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_library, "1")

from early_stopping import (  # noqa: E402
    EPOCHS,
    WORKLOADS,
    Workload,
    best_at,
    epochs_to_reach,
    errors,
    first_rung,
    median_of,
    only,
    tpe_study,
)

from exp_compat import Space  # noqa: E402
from exp_compat.early_stopping.pruners import Pruner, make_pruner  # noqa: E402
from exp_compat.files.columns import Status  # noqa: E402
from exp_compat.space.hydra_syntax import parse_overrides  # noqa: E402
from hydra_plugins.exp_sweeper._gopt import GoptStrategy  # noqa: E402
from hydra_plugins.exp_sweeper._objectives import Objectives  # noqa: E402
from hydra_plugins.exp_sweeper._outcome import Outcome  # noqa: E402
from hydra_plugins.exp_sweeper._proposer import Proposer  # noqa: E402
from hydra_plugins.exp_sweeper.config import Direction, PrunedValue  # noqa: E402

SLOTS = 2

# A method: ask() -> (handle, params); goes_on(handle, epoch, error) -> False to stop at this epoch;
# finish(handle, pruned, error). The loop below drives every method the same way.
Ask = Callable[[], Optional[Tuple[Any, Dict[str, Any]]]]
GoesOn = Callable[[Any, int, float], bool]
Finish = Callable[[Any, bool, float], None]


def run_slots(ask: Ask, goes_on: GoesOn, finish: Finish, budget: int, curve: Callable[[Dict[str, Any]], Iterator[float]]) -> List[dict]:
    """Two slots taking turns, one epoch per turn, until ``budget`` epochs: the epochs in the order trained
    (``curve`` gives a trial's errors: the workload trained, or curves trained before)."""
    trained: List[dict] = []
    slots: List[Tuple[Any, Iterator[float], List[float]]] = []

    def fill() -> None:
        while len(slots) < SLOTS and (asked := ask()) is not None:
            handle, params = asked
            slots.append((handle, curve(params), []))

    fill()
    turn = 0
    while slots and len(trained) < budget:
        i = turn % len(slots)
        turn += 1
        handle, ahead, seen = slots[i]
        seen.append(next(ahead))
        epoch = len(seen)
        trained.append({"epoch": epoch, "error": seen[-1]})
        stopped = epoch < EPOCHS and not goes_on(handle, epoch, seen[-1])
        if epoch == EPOCHS or stopped:
            slots.pop(i)
            finish(handle, stopped, seen[-1])
            fill()
    return trained


def exp_gopt(
    workload: Workload,
    seed: int,
    trials: int,
    budget: int,
    pruned_value: Optional[str],
    pruner_kind: str = "asha",
    min_resource: int = 1,
) -> List[dict]:
    search = Space(parse_overrides(workload.space()).params).search()  # the real sweeps' space
    proposer = Proposer(search.dimensions, surrogate="GP", acquisition="EI", n_initial_points=10, seed=seed)
    n_trials = 6 * trials if pruned_value else trials
    told = {"pruned_value": PrunedValue(pruned_value)} if pruned_value else {}
    objectives = Objectives([Direction.minimize], None, [])
    strategy = GoptStrategy(search, proposer, n_trials, objectives, **told, seed=seed, scored=bool(pruned_value))  # as the sweep
    pruner = make_pruner(pruner_kind, min_resource, EPOCHS, 3, 0, 0, seed)

    def ask() -> Optional[Tuple[Any, Dict[str, Any]]]:
        asked = strategy.ask(1)
        return (asked[0], asked[0].params) if asked else None

    def finish(trial: Any, pruned: bool, error: float) -> None:
        strategy.tell(trial, Outcome(Status.PRUNED if pruned else Status.COMPLETED, value=error))

    goes_on = judged_by(pruner, lambda trial: str(trial.extra["id"])) if pruned_value else never_stop
    return run_slots(ask, goes_on, finish, budget, lambda params: errors(workload, params))


def never_stop(handle: Any, epoch: int, error: float) -> bool:
    return True


def judged_by(pruner: Pruner, key: Callable[[Any], str]) -> GoesOn:
    """Decisions of one of exp's pruners, at the rungs a trial crosses as ``report()`` finds them in the job."""
    next_rung: Dict[str, int] = {}

    def goes_on(handle: Any, epoch: int, error: float) -> bool:
        name = key(handle)
        rung = pruner.rungs(name).crossed(epoch, next_rung.get(name, 0))
        if rung is None:
            return True
        next_rung[name] = rung + 1
        return pruner.decide(name, rung, error)

    return goes_on


def optuna_tpe(workload: Workload, seed: int, budget: int, hyperband: bool, min_resource: int) -> List[dict]:
    import optuna

    study = tpe_study(seed, hyperband, min_resource)

    def ask() -> Tuple[Any, Dict[str, Any]]:
        trial = study.ask()
        return trial, workload.suggest(trial)

    def goes_on(trial: Any, epoch: int, error: float) -> bool:
        trial.report(error, epoch)
        return not trial.should_prune()

    def finish(trial: Any, pruned: bool, error: float) -> None:
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, error)

    return run_slots(ask, goes_on, finish, budget, lambda params: errors(workload, params))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=20, help="trials of the no-pruning run (its epochs are the budget)")
    parser.add_argument("--only", nargs="+", default=[], help="run only the methods whose names contain one of these (and no pruning)")
    parser.add_argument(
        "--until", type=int, choices=(1, 2, 4), default=1, help="stop every method at B/UNTIL: quicker, and nothing after it is measured"
    )
    parser.add_argument("--min-resource", type=first_rung, default=1, help="the first rung of every pruner")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="mlp", help="the model trained (early_stopping.py)")
    args = parser.parse_args()
    workload = WORKLOADS[args.workload]
    budget = args.trials * EPOCHS
    cut = budget // args.until
    first = args.min_resource
    methods: Dict[str, Callable[[int], List[dict]]] = {
        "exp_gopt, no pruning": lambda s: exp_gopt(workload, s, args.trials, cut, None),
        **{
            f"exp_gopt + ASHA (pruned_value={p})": lambda s, p=p: exp_gopt(workload, s, args.trials, cut, p, "asha", first)
            for p in ("capped", "last", "ignore")
        },
        "exp_gopt + Hyperband": lambda s: exp_gopt(workload, s, args.trials, cut, "last", "hyperband", first),
    }
    if importlib.util.find_spec("optuna") is not None:
        methods["Optuna TPE + SuccessiveHalvingPruner"] = lambda s: optuna_tpe(workload, s, cut, False, first)
        methods["Optuna TPE + HyperbandPruner"] = lambda s: optuna_tpe(workload, s, cut, True, first)
    else:
        print("optuna is not installed: its rows are skipped (pip install optuna)", file=sys.stderr)
    methods = only(methods, args.only)
    marks = [b for b in (budget // 4, budget // 2, budget) if b <= cut]
    found: Dict[str, List[List[Optional[float]]]] = {name: [] for name in methods}
    reached: Dict[str, List[Optional[int]]] = {name: [] for name in methods}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        target = None
        for name, method in methods.items():
            trained = method(seed)
            if target is None and cut == budget:  # the no-pruning run comes first: its final best is the target
                target = best_at(trained, [budget])[0]
            found[name].append(best_at(trained, marks))
            reached[name].append(epochs_to_reach(trained, target) if target is not None else None)
            print(f"seed {seed}: {name}: {found[name][-1]}, reached {reached[name][-1]}", file=sys.stderr, flush=True)
    setting = f"{workload.name} workload, median over {args.seeds} seeds, {SLOTS} slots, min_resource={first}, simulated"
    print(f"budget B = {budget} epochs ({args.trials} trials x {EPOCHS}), {setting}\n")
    columns = ["best error at B/4", "at B/2", "at B"][: len(marks)] + (
        ["epochs to reach the no-pruning best (seeds within B/3)"] * (cut == budget)
    )
    print(f"| method | {' | '.join(columns)} |")
    print("|---" * (len(columns) + 1) + "|")
    for name in methods:
        cells = [median_of([at[i] for at in found[name]]) for i in range(len(marks))]
        hits = [r for r in reached[name] if r is not None]
        soon = sum(r <= budget // 3 for r in hits)
        if cut == budget:
            cells.append(f"{statistics.median(hits):.0f} ({len(hits)}/{args.seeds} seeds; {soon})" if hits else "never")
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
