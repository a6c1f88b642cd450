"""Optimization quality at equal evaluations: exp_gopt's proposer vs scikit-optimize and random search.

Median simple regret (best value found minus the known minimum) over seeds, on
Branin (2-D) and Hartmann-6 (6-D). Methods, all with one BLAS thread:

* random search;
* scikit-optimize's sequential ``gp_minimize`` (its defaults);
* exp_gopt's proposer, sequential (one point at a time, GP + EI);
* exp_gopt's proposer in batches of 4 (the kriging believer), the same number of evaluations;
* exp_gopt asynchronously with 4 slots, as its sweep loop runs it: whenever one of the 4 running
  trials finishes (a random one: jobs of uneven length), the freed slot's proposal takes that result
  in a quick refit with the kernel kept and the 3 others as pending, and the full refit with it runs
  in the background (here: always done before the next trial ends).

    python benchmarks/optimization_quality.py              # 10 seeds, Branin 50 / Hartmann-6 100 evaluations
    python benchmarks/optimization_quality.py --quick      # 3 seeds, 30 / 40 evaluations
    python benchmarks/optimization_quality.py --only "exp_gopt, asynchronous, 4 slots"
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

import numpy as np
from methods_table import print_methods_table
from skopt import gp_minimize
from skopt.space import Real

from exp_compat import Space
from exp_compat.files.columns import Status
from hydra_plugins.exp_sweeper._gopt import GoptStrategy
from hydra_plugins.exp_sweeper._objectives import Objectives
from hydra_plugins.exp_sweeper._outcome import Outcome
from hydra_plugins.exp_sweeper._proposer import Proposer
from hydra_plugins.exp_sweeper.config import Direction


def branin(x):
    x1, x2 = x
    return (x2 - 5.1 / (4 * np.pi**2) * x1**2 + 5 / np.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * np.pi)) * np.cos(x1) + 10


HARTMANN_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
HARTMANN_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(x):
    x = np.asarray(x, dtype=float)
    return float(-np.sum(HARTMANN_ALPHA * np.exp(-np.sum(HARTMANN_A * (x - HARTMANN_P) ** 2, axis=1))))


PROBLEMS = {
    "Branin": (branin, [Real(-5.0, 10.0, name="x1"), Real(0.0, 15.0, name="x2")], 0.397887),
    "Hartmann-6": (hartmann6, [Real(0.0, 1.0, name=f"x{i}") for i in range(6)], -3.32237),
}


def run_proposer(f, dims, budget, seed, batch, surrogate="GP"):
    proposer = Proposer(dims, surrogate=surrogate, acquisition="EI", n_initial_points=10, seed=seed)
    while len(proposer.y) < budget:
        points = proposer.propose(min(batch, budget - len(proposer.y)), pending=[])
        proposer.tell(points, [f(p) for p in points])
    return min(proposer.y)


def run_async(f, dims, budget, seed, slots=4, surrogate="GP"):
    search = Space.from_mapping({d.name: {"type": "range", "bounds": [d.low, d.high]} for d in dims}).search()
    proposer = Proposer(search.dimensions, surrogate=surrogate, acquisition="EI", n_initial_points=10, seed=seed)
    strategy = GoptStrategy(search, proposer, budget, Objectives([Direction.minimize], None, []))
    rng = np.random.RandomState(1000 + seed)
    running = strategy.ask(slots)
    while running:
        strategy.prepare()
        if strategy.fitting is not None:
            strategy.fitting.result()
        trial = running.pop(rng.randint(len(running)))
        strategy.tell(trial, Outcome(Status.COMPLETED, value=f([trial.params[d.name] for d in dims])))
        running += strategy.ask(1)
    strategy.close()
    return strategy.best_value


def run_skopt(f, dims, budget, seed):
    return gp_minimize(f, dims, n_calls=budget, n_initial_points=10, random_state=seed).fun


METHODS = {
    "random search": lambda f, d, n, s: run_proposer(f, d, n, s, batch=1, surrogate="random"),
    "skopt gp_minimize (sequential)": run_skopt,
    "exp_gopt, sequential": lambda f, d, n, s: run_proposer(f, d, n, s, batch=1),
    "exp_gopt, batches of 4": lambda f, d, n, s: run_proposer(f, d, n, s, batch=4),
    "exp_gopt, asynchronous, 4 slots": run_async,
    **{
        f"exp_gopt {surrogate}, asynchronous, 4 slots": lambda f, d, n, s, surrogate=surrogate: run_async(f, d, n, s, surrogate=surrogate)
        for surrogate in ("RF", "ET")
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run from this one (other seeds, to check a difference)")
    parser.add_argument("--per-seed", action="store_true", help="also print each seed's regret (stderr, one JSON line per cell)")
    parser.add_argument("--only", nargs="+", choices=list(METHODS), help="run only these methods")
    options = parser.parse_args()
    seeds = options.seeds or (3 if options.quick else 10)
    budgets = {"Branin": 30, "Hartmann-6": 40} if options.quick else {"Branin": 50, "Hartmann-6": 100}
    chosen = range(options.first_seed, options.first_seed + seeds)
    print(f"median simple regret over {seeds} seeds ({chosen.start}-{chosen.stop - 1}; lower is better)\n")

    def cell(method: Any, index: int) -> str:
        problem = list(PROBLEMS)[index]
        f, dims, minimum = PROBLEMS[problem]
        regrets = [method(f, dims, budgets[problem], seed) - minimum for seed in chosen]
        if options.per_seed:  # for a paired comparison of two versions, seed by seed
            print(json.dumps({"problem": problem, "regrets": dict(zip(chosen, regrets))}), file=sys.stderr, flush=True)
        return f"{statistics.median(regrets):.4g}"

    print_methods_table(METHODS, options.only, [f"{p} ({budgets[p]} evals)" for p in PROBLEMS], cell)


if __name__ == "__main__":
    main()
