"""Proposal latency: 8 parallel points at 100 observations in a 6-D mixed space.

Compares exp_gopt's proposer (skopt's own next point, then kriging-believer points
with the GP kernel fixed) with scikit-optimize's ``Optimizer.ask(n_points=8)``
(constant liar with a full refit per point), both with BLAS limited to one
thread, on the same data. Reports the median over repeats and the ratio; and the cost of telling
the 100th result, with scikit-optimize's own next point searched for (batches) and without it (the
background refit of an asynchronous sweep).

    python benchmarks/proposal_latency.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from skopt import Optimizer
from skopt.space import Categorical, Integer, Real
from threadpoolctl import threadpool_limits

from hydra_plugins.exp_sweeper._proposer import Proposer, point_key


def dimensions():
    return [
        Real(-5, 5, name="a"),
        Real(1e-4, 1, prior="log-uniform", name="lr"),
        Integer(0, 20, name="n"),
        Categorical(["x", "y", "z"], name="c"),
        Real(0, 1, name="u"),
        Integer(1, 8, name="k"),
    ]


def objective(p):
    a, lr, n, c, u, k = p
    return (a - 1) ** 2 + abs(np.log10(lr) + 2) + (n - 7) ** 2 / 20 + "xyz".index(c) * 0.3 + (u - 0.2) ** 2 + abs(k - 3)


def history(seed: int):
    rng = np.random.RandomState(seed)
    from skopt.space import Space

    X = Space(dimensions()).rvs(100, random_state=rng)
    return X, [objective(p) for p in X]


def ours(seed: int) -> tuple:
    X, y = history(seed)
    proposer = Proposer(dimensions(), n_initial_points=10, seed=seed)
    proposer.tell(X, y)  # the model fit happens here, when results arrive (as in a sweep)
    started = time.perf_counter()
    batch = proposer.propose(8, pending=[])
    return time.perf_counter() - started, len({point_key(p) for p in batch})


def naive(seed: int) -> tuple:
    X, y = history(seed)
    with threadpool_limits(limits=1):
        optimizer = Optimizer(dimensions(), "GP", n_initial_points=10, random_state=seed)
        optimizer.tell(X, y)
        started = time.perf_counter()
        batch = optimizer.ask(n_points=8)
        return time.perf_counter() - started, len({point_key(p) for p in batch})


def tell_100th(seed: int, own_point: bool) -> float:
    X, y = history(seed)
    proposer = Proposer(dimensions(), n_initial_points=10, seed=seed)
    proposer.tell(X[:99], y[:99])
    started = time.perf_counter()
    proposer.tell(X[99:], y[99:], own_point=own_point)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    results = {}
    for name, fn in (("exp_gopt proposer", ours), ("skopt ask(n_points=8)", naive)):
        runs = [fn(seed) for seed in range(options.repeats)]
        results[name] = statistics.median(t for t, _ in runs)
        distinct = min(d for _, d in runs)
        print(f"| {name} | {results[name]:.3f} s | {distinct} of 8 distinct (worst run) |", flush=True)
    print(f"| ratio | {results['skopt ask(n_points=8)'] / results['exp_gopt proposer']:.1f}x faster | |")
    for own_point, what in ((True, "with skopt's own next point (batches)"), (False, "surrogate only (asynchronous)")):
        median = statistics.median(tell_100th(seed, own_point) for seed in range(options.repeats))
        print(f"| telling the 100th result, {what} | {median:.3f} s | |")


if __name__ == "__main__":
    main()
