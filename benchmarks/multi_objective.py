"""Several objectives and outcome constraints: exp_gopt against random search and Optuna's samplers.

Problems (all evaluations equal, medians over seeds, one BLAS thread):

* ZDT1 and ZDT2 (Zitzler, Deb and Thiele 2000), 6 dimensions in [0, 1], two objectives to minimise, 60
  evaluations: dominated hypervolume of the evaluated points against the fixed reference point (11, 11)
  (BoTorch's for ZDT; the best reachable is 120.67 for ZDT1 and 120.33 for ZDT2), larger is better;
* Branin (2-D) under the constraint (x1 - 2.5)^2 + (x2 - 7.5)^2 <= 20, which cuts off all three of its
  unconstrained minima (the constrained minimum, on the disk's edge, is computed here), 40 evaluations:
  the best feasible value's regret, smaller is better (a run with no feasible point counts as infinite).

Methods: exp_gopt's strategy as its sweep runs it (GP + EI; ParEGO scalarisations redrawn at each fit;
constraints by penalty), sequential and asynchronously with 4 slots (a random one of the 4 running trials
finishes each time; the background refit is done before the next one ends); random search (exp_gopt's
``random`` surrogate); Optuna (its own sequential loop) with NSGA-II, TPE and its GP sampler, each with
its constraints (``Trial.set_constraint``) on the constrained problem. Optuna's samplers start with their own default number of
random trials; exp_gopt with 10.

    python benchmarks/multi_objective.py                 # 10 seeds
    python benchmarks/multi_objective.py --seeds 3 --only "exp_gopt, sequential" "Optuna NSGA-II"

Needs ``pip install optuna`` (and torch for Optuna's GP sampler; without it that row says so).
"""

from __future__ import annotations

import argparse
import math
import statistics
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
from methods_table import print_methods_table

from exp_compat import Space
from exp_compat.files.columns import Status
from hydra_plugins.exp_sweeper._gopt import GoptStrategy
from hydra_plugins.exp_sweeper._objectives import Objectives, hypervolume, parse_constraints
from hydra_plugins.exp_sweeper._outcome import Outcome
from hydra_plugins.exp_sweeper._proposer import Proposer
from hydra_plugins.exp_sweeper.config import Direction

DIMS = 6
REFERENCE = (11.0, 11.0)
DISK = "(x1 - 2.5)^2 + (x2 - 7.5)^2 <= 20"


def zdt(x: List[float], concave: bool) -> List[float]:
    f1 = float(x[0])
    g = 1 + 9 * float(np.sum(x[1:])) / (len(x) - 1)
    ratio = f1 / g
    return [f1, g * (1 - (ratio**2 if concave else math.sqrt(ratio)))]


def branin(x1: Any, x2: Any) -> Any:
    return (x2 - 5.1 / (4 * np.pi**2) * x1**2 + 5 / np.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * np.pi)) * np.cos(x1) + 10


def disk(x: List[float]) -> float:
    """The constrained metric; feasible at most 20."""
    return (x[0] - 2.5) ** 2 + (x[1] - 7.5) ** 2


def constrained_minimum() -> float:
    """Branin's minimum over the disk: a fine grid, then its edge at a finer angle (the minimum is on it)."""
    grid = np.linspace(0, 1, 801)
    x1, x2 = np.meshgrid(-5 + 15 * grid, 15 * grid)
    inside = (x1 - 2.5) ** 2 + (x2 - 7.5) ** 2 <= 20
    values = branin(x1[inside], x2[inside])
    angles = np.linspace(0, 2 * np.pi, 200_001)
    edge = branin(2.5 + math.sqrt(20) * np.cos(angles), 7.5 + math.sqrt(20) * np.sin(angles))
    return float(min(np.min(values), np.min(edge)))


class Problem:
    def __init__(self, name: str, bounds: List[Tuple[float, float]], budget: int, multi: bool):
        self.name, self.bounds, self.budget, self.multi = name, bounds, budget, multi

    def evaluate(self, x: List[float]) -> Any:
        raise NotImplementedError

    def objectives(self) -> Objectives:
        if self.multi:
            return Objectives([Direction.minimize] * 2, None, [])
        return Objectives([Direction.minimize], "value", parse_constraints({"disk": "<= 20"}))

    def score(self, returned: List[Any]) -> float:
        """Hypervolume (two objectives) or regret of the best feasible value."""
        if self.multi:
            return hypervolume(np.array(returned), REFERENCE)
        feasible = [r["value"] for r in returned if r["disk"] <= 20]
        return min(feasible) - CONSTRAINED_MINIMUM if feasible else math.inf


class Zdt(Problem):
    def __init__(self, name: str, concave: bool):
        super().__init__(name, [(0.0, 1.0)] * DIMS, 60, multi=True)
        self.concave = concave

    def evaluate(self, x: List[float]) -> Any:
        return zdt(x, self.concave)


class ConstrainedBranin(Problem):
    def __init__(self) -> None:
        super().__init__("Branin, constrained", [(-5.0, 10.0), (0.0, 15.0)], 40, multi=False)

    def evaluate(self, x: List[float]) -> Any:
        return {"value": float(branin(*x)), "disk": disk(x)}


CONSTRAINED_MINIMUM = constrained_minimum()
PROBLEMS = [Zdt("ZDT1", concave=False), Zdt("ZDT2", concave=True), ConstrainedBranin()]


XI = {"value": 0.01}  # exp_gopt's xi (its default; --xi changes it)


def run_exp_gopt(problem: Problem, seed: int, slots: int, surrogate: str = "GP") -> float:
    names = [f"x{i + 1}" for i in range(len(problem.bounds))]
    search = Space.from_mapping({n: {"type": "range", "bounds": list(b)} for n, b in zip(names, problem.bounds)}).search()
    proposer = Proposer(search.dimensions, surrogate=surrogate, acquisition="EI", xi=XI["value"], n_initial_points=10, seed=seed)
    strategy = GoptStrategy(search, proposer, problem.budget, problem.objectives(), seed=seed)
    rng = np.random.RandomState(1000 + seed)
    returned: List[Any] = []
    running = strategy.ask(slots)
    while running:
        if slots > 1:
            strategy.prepare()
            if strategy.fitting is not None:
                strategy.fitting.result()
        trial = running.pop(rng.randint(len(running)))
        value = problem.evaluate([trial.params[n] for n in names])
        returned.append(value)
        strategy.tell(trial, Outcome(Status.COMPLETED, value=value))
        running += strategy.ask(slots - len(running))
    strategy.close()
    return problem.score(returned)


def run_optuna(problem: Problem, seed: int, sampler_name: str) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    samplers = {
        "NSGA-II": lambda: optuna.samplers.NSGAIISampler(seed=seed),
        "TPE": lambda: optuna.samplers.TPESampler(seed=seed),
        "GP": lambda: optuna.samplers.GPSampler(seed=seed),
    }
    returned: List[Any] = []

    def objective(trial: Any) -> Any:
        x = [trial.suggest_float(f"x{i + 1}", low, high) for i, (low, high) in enumerate(problem.bounds)]
        value = problem.evaluate(x)
        returned.append(value)
        if problem.multi:
            return value
        trial.set_constraint("disk", value["disk"] - 20)  # Optuna's constraints: <= 0 is feasible
        return value["value"]

    directions = ["minimize"] * (2 if problem.multi else 1)
    study = optuna.create_study(directions=directions, sampler=samplers[sampler_name]())
    study.optimize(objective, n_trials=problem.budget)
    return problem.score(returned)


METHODS: Dict[str, Callable[[Problem, int], float]] = {
    "random search": lambda p, s: run_exp_gopt(p, s, slots=1, surrogate="random"),
    "exp_gopt, sequential": lambda p, s: run_exp_gopt(p, s, slots=1),
    "exp_gopt, asynchronous, 4 slots": lambda p, s: run_exp_gopt(p, s, slots=4),
    "Optuna NSGA-II": lambda p, s: run_optuna(p, s, "NSGA-II"),
    "Optuna TPE": lambda p, s: run_optuna(p, s, "TPE"),
    "Optuna GP": lambda p, s: run_optuna(p, s, "GP"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--only", nargs="+", choices=list(METHODS), help="run only these methods")
    parser.add_argument("--xi", type=float, default=XI["value"], help="exp_gopt's xi")
    parser.add_argument("--problems", nargs="+", choices=[p.name for p in PROBLEMS], help="run only these problems")
    options = parser.parse_args()
    XI["value"] = options.xi
    print(f"medians over {options.seeds} seeds; ZDT: hypervolume (reference {REFERENCE}, larger is better); ")
    print(f"constrained Branin ({DISK}; minimum {CONSTRAINED_MINIMUM:.5f}): regret of the best feasible value\n")
    problems = [p for p in PROBLEMS if not options.problems or p.name in options.problems]

    def cell(method: Callable[[Problem, int], float], index: int) -> str:
        try:
            scores = [method(problems[index], seed) for seed in range(options.seeds)]
        except ImportError as error:
            return f"not run ({error})"
        return f"{statistics.median(scores):.4g} [{np.percentile(scores, 25):.4g}, {np.percentile(scores, 75):.4g}]"

    print_methods_table(METHODS, options.only, [f"{p.name} ({p.budget} evals)" for p in problems], cell)


if __name__ == "__main__":
    main()
