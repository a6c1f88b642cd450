"""How early the early-stopping workload's errors rank trials as they end: what ``min_resource`` should be.

Trains ``--configurations`` random configurations of one of ``early_stopping.py``'s workloads (the same
space) to the end, once, then from their curves:

1. for each epoch: Spearman's rank correlation of the epoch's error with the final (27th) one, over every
   configuration and within the best third at that epoch (the trials that a cut there keeps, which the next
   rung must rank); and of the best 2.5% final errors, the share that would survive a cut at that epoch to
   the best third, and to the best ninth (ASHA's second rung);
2. random search with each pruner setting (exp's own pruners, two slots taking turns one epoch per turn as in
   ``early_stopping_sim.py``), drawing configurations from these curves in ``--seeds`` random orders: the
   mean best final error (in images of the 450) at a quarter, half and all of the no-pruning budget (20
   trials), and in how many orders the setting reached the no-pruning run's final best within a third of it.

3. luck: the best tenth of the configurations trained again with two other model seeds, and the rank
   correlation of their final errors between seeds (every method fixes the model's seed: where the
   good configurations rank differently with another seed, which of them ends best is the seed's luck,
   and no rung can foresee it).

Random search, so that what differs between settings is the pruner alone.

    python benchmarks/early_stopping_rungs.py [--workload mlp|sgd] [--configurations 2000] [--seeds 1000] [--processes 2]
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import random
import statistics
from typing import Any, Dict, Iterator, List, Optional, Tuple

for _library in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_library, "1")

from early_stopping import EPOCHS, WORKLOADS, best_at, epochs_to_reach, errors  # noqa: E402
from early_stopping_sim import judged_by, never_stop, run_slots  # noqa: E402

from exp_compat.cli.exp_commands import at_least  # noqa: E402
from exp_compat.early_stopping.pruners import make_pruner  # noqa: E402

TRIALS = 20  # the no-pruning run's trials: its epochs are the budget
IMAGES = 450  # the validation set: one image is 1/450 of error
SETTINGS: List[Tuple[str, Optional[str], int]] = [
    ("no pruning", None, 0),
    ("asha, min_resource=1 (rungs 1, 3, 9)", "asha", 1),
    ("asha, min_resource=3 (rungs 3, 9)", "asha", 3),
    ("asha, min_resource=9 (rung 9)", "asha", 9),
    ("hyperband, min_resource=1", "hyperband", 1),
    ("hyperband, min_resource=3", "hyperband", 3),
]


def curve_of(workload: str, model_seed: int, seed: int) -> List[float]:
    """The whole curve of the configuration drawn with ``seed`` from the workload's space, its model
    started from ``model_seed``."""
    chosen = WORKLOADS[workload]
    return list(errors(chosen, chosen.draw(random.Random(seed)), model_seed))


def ranks(values: List[float]) -> List[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):  # ties share their mean rank
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2
        i = j + 1
    return out


def spearman(x: List[float], y: List[float]) -> float:
    """Spearman's rank correlation; NaN where either side is constant (a few configurations, all tied)."""
    if len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan")
    return statistics.correlation(ranks(x), ranks(y))


def best_of(final: List[float], part: int) -> List[int]:
    """The configurations of the best 1/``part`` of the final errors, best first."""
    return sorted(range(len(final)), key=final.__getitem__)[: max(1, len(final) // part)]


def best_share(at: List[float], final: List[float], share: float) -> float:
    """The share of the best 2.5% final errors whose error at the epoch is within its best ``share``."""
    cut = sorted(at)[max(1, int(len(at) * share)) - 1]
    finest = best_of(final, 40)
    return sum(at[i] <= cut for i in finest) / len(finest)


def search(curves: List[List[float]], seed: int, kind: Optional[str], min_resource: int, budget: int) -> List[dict]:
    """Random search over the trained curves, in an order drawn with ``seed``, with one pruner setting (none:
    ``kind`` None)."""
    picks = iter(random.Random(seed).sample(range(len(curves)), len(curves)))
    pruner = make_pruner(kind, min_resource, EPOCHS, 3, 0, 0, seed) if kind else None

    def ask() -> Optional[Tuple[Any, Dict[str, Any]]]:
        index = next(picks, None)
        return None if index is None else (index, {"index": index})

    def curve(params: Dict[str, Any]) -> Iterator[float]:
        return iter(curves[params["index"]])

    goes_on = judged_by(pruner, str) if pruner is not None else never_stop
    return run_slots(ask, goes_on, lambda *_: None, budget, curve)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configurations", type=at_least(40), default=2000, help="configurations trained (the best 2.5%% is one at 40)")
    parser.add_argument("--seeds", type=at_least(1), default=1000, help="random orders of the configurations")
    parser.add_argument("--processes", type=at_least(1), default=2, help="processes that train the curves")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="mlp", help="the model trained (early_stopping.py)")
    args = parser.parse_args()
    with multiprocessing.Pool(args.processes) as pool:
        curves = pool.map(functools.partial(curve_of, args.workload, 0), range(args.configurations), chunksize=8)
        final = [c[-1] for c in curves]
        tenth = best_of(final, 10)
        again = {0: [final[i] for i in tenth]}
        for model_seed in (1, 2):
            again[model_seed] = [c[-1] for c in pool.map(functools.partial(curve_of, args.workload, model_seed), tenth)]
    print(f"{args.configurations} random configurations of the {args.workload} workload trained to epoch {EPOCHS}\n")
    print(
        "| epoch | rank correlation with the final error | within the best third at the epoch | best 2.5% kept by a cut to 1/3 | to 1/9 |"
    )
    print("|---|---|---|---|---|")
    for epoch in (1, 2, 3, 5, 9, 15):
        at = [c[epoch - 1] for c in curves]
        third = [i for i in range(len(at)) if at[i] <= sorted(at)[len(at) // 3]]
        within = spearman([at[i] for i in third], [final[i] for i in third])
        cells = [
            f"{spearman(at, final):.2f}",
            f"{within:.2f}",
            f"{best_share(at, final, 1 / 3):.2f}",
            f"{best_share(at, final, 1 / 9):.2f}",
        ]
        print(f"| {epoch} | {' | '.join(cells)} |")
    print(f"\nthe best tenth ({len(tenth)} configurations) trained again with other model seeds\n")
    print("| model seeds | rank correlation of the final errors |")
    print("|---|---|")
    for a, b in ((0, 1), (0, 2), (1, 2)):
        print(f"| {a} and {b} | {spearman(again[a], again[b]):.2f} |")
    budget = TRIALS * EPOCHS
    marks = [budget // 4, budget // 2, budget]
    found: Dict[str, List[List[float]]] = {name: [] for name, _, _ in SETTINGS}
    soon: Dict[str, int] = {name: 0 for name, _, _ in SETTINGS}
    for seed in range(args.seeds):
        target = None
        for name, kind, min_resource in SETTINGS:
            trained = search(curves, seed, kind, min_resource, budget)
            found[name].append([IMAGES * (b if b is not None else 1.0) for b in best_at(trained, marks)])
            if target is None:  # no pruning comes first: its final best is the target
                target = best_at(trained, [budget])[0]
            reached = epochs_to_reach(trained, target)
            soon[name] += reached is not None and reached <= budget // 3
    print(f"\nrandom search, {args.seeds} orders, budget B = {budget} epochs ({TRIALS} trials x {EPOCHS}), two slots\n")
    print("| setting | mean images wrong at B/4 | at B/2 | at B | orders that reached the no-pruning best within B/3 |")
    print("|---|---|---|---|---|")
    for name, _, _ in SETTINGS:
        means = [statistics.mean(at[i] for at in found[name]) for i in range(3)]
        print(f"| {name} | {' | '.join(f'{m:.2f}' for m in means)} | {soon[name]} of {args.seeds} |")


if __name__ == "__main__":
    main()
