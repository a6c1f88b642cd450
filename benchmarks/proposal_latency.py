"""Proposal latency: what a freed slot waits for, and what fitting the surrogate costs as results grow.

All in a 6-D mixed space (2 real, 2 integer, 1 log-real, 1 categorical) with a cheap objective,
one BLAS thread, medians over repeats:

1. Batch of 8 at 100 observations: exp_gopt's proposer (skopt's own next point, then kriging-believer
   points with the GP kernel fixed) against scikit-optimize's ``Optimizer.ask(n_points=8)`` (constant
   liar with a full refit per point), on the same data.
2. Freed slot, for every surrogate, at 30, 100 and 300 observations with 2, 8 and 32 running trials: a
   result arrives that the last fit has not seen (an asynchronous sweep fits in the background), and
   the time from recording it to the slot's next point is measured (``record`` + ``propose(1)``).
3. GP fit at 100, 300, 1,000 and 3,000 observations: what exp_gopt's fit costs (beyond 100, a few
   L-BFGS steps from the last fitted kernel, after the fits a sweep makes on the way), against
   scikit-optimize's own fit (a search from scratch with 2 restarts; up to ``--fresh-up-to``
   observations, it takes minutes beyond); and each model's root-mean-square error on 1,000
   held-out points, so that speed is not bought with a worse model (medians over data sets).

    python benchmarks/proposal_latency.py [--repeats 5] [--sizes 100 300 1000 3000] [--refit-seeds 3] [--skip batch slots refit]
    python benchmarks/proposal_latency.py --skip batch refit --surrogates GP RF --constraints 2   # freed slots, 2 constraints
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
from skopt import Optimizer
from skopt.space import Categorical, Integer, Real, Space
from threadpoolctl import threadpool_limits

from hydra_plugins.exp_sweeper._proposer import Proposer, point_key

SURROGATES = ("GP", "RF", "ET", "GBRT", "random")


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


def points(n: int, seed: int):
    X = Space(dimensions()).rvs(n, random_state=np.random.RandomState(seed))
    return X, [objective(p) for p in X]


def batch_ours(seed: int) -> tuple:
    X, y = points(100, seed)
    proposer = Proposer(dimensions(), n_initial_points=10, seed=seed)
    proposer.tell(X, y)  # the model fit happens here, when results arrive (as in a sweep)
    started = time.perf_counter()
    batch = proposer.propose(8, pending=[])
    return time.perf_counter() - started, len({point_key(p) for p in batch})


def batch_skopt(seed: int) -> tuple:
    X, y = points(100, seed)
    optimizer = Optimizer(dimensions(), "GP", n_initial_points=10, random_state=seed)
    optimizer.tell(X, y)
    started = time.perf_counter()
    batch = optimizer.ask(n_points=8)
    return time.perf_counter() - started, len({point_key(p) for p in batch})


def slacks(X, constraints: int):
    """Outcome constraints' slacks (<= 0: met) for ``--constraints``: a <= 1 and u >= 0.5."""
    return [[p[0] - 1.0, 0.5 - p[4]][:constraints] for p in X] if constraints else []


def freed_slot(surrogate: str, n: int, running: int, repeats: int, constraints: int = 0) -> float:
    """Median seconds from a result's arrival to the freed slot's next point."""
    X, y = points(n + running + repeats, seed=n + running)
    proposer = Proposer(dimensions(), surrogate=surrogate, n_initial_points=10, seed=0)
    proposer.constrain(constraints)
    proposer.record(X[:n], y[:n], slacks(X[:n], constraints))
    pending = X[n : n + running]
    waits = []
    for i in range(repeats):
        proposer.refit()  # the background fit, done while the jobs ran
        arrived = n + running + i
        started = time.perf_counter()
        proposer.record([X[arrived]], [y[arrived]], slacks([X[arrived]], constraints))
        proposer.propose(1, pending=pending)
        waits.append(time.perf_counter() - started)
    return statistics.median(waits)


def rmse(model, proposer: Proposer, held_out) -> float:
    X, y = held_out
    return float(np.sqrt(np.mean((model.predict(proposer.space.transform(X)) - np.asarray(y)) ** 2)))


def fit_chain(sizes, fresh_up_to: int, seed: int) -> dict:
    """For each size: exp_gopt's fit (seconds, held-out RMSE) after the fits a sweep would have made on
    the way (one per 5% more results), and scikit-optimize's own fit of the same data."""
    X, y = points(max(sizes), seed=seed)
    held_out = points(1000, seed=1000 + seed)
    proposer = Proposer(dimensions(), n_initial_points=10, seed=seed)
    found = {}
    for n in sizes:
        while len(proposer.y) < n / 1.05:
            grown = min(n, math.ceil(1.05 * len(proposer.y)) if proposer.y else math.ceil(n / 1.05))
            proposer.record(X[len(proposer.y) : grown], y[len(proposer.y) : grown])
            proposer.refit()
        proposer.record(X[len(proposer.y) : n], y[len(proposer.y) : n])
        started = time.perf_counter()
        proposer.refit()
        found[n, "ours"] = (time.perf_counter() - started, rmse(proposer.fitted.model, proposer, held_out))
        if n <= fresh_up_to:
            fresh = Proposer(dimensions(), n_initial_points=10, seed=seed)
            fresh.record(X[:n], y[:n])
            started = time.perf_counter()
            fresh.refit()  # its first fit: scikit-optimize's search from scratch, restarts included
            found[n, "skopt"] = (time.perf_counter() - started, rmse(fresh.fitted.model, fresh, held_out))
    return found


def refits(sizes, fresh_up_to: int, seeds: int) -> None:
    runs = [fit_chain(sizes, fresh_up_to, seed) for seed in range(seeds)]
    print(f"| observations | exp_gopt's fit | RMSE | scikit-optimize's fit | RMSE |  (medians of {seeds} data sets)")
    print("|---|---|---|---|---|")
    for n in sizes:
        cells = []
        for who in ("ours", "skopt"):
            if (n, who) in runs[0]:
                cells += [f"{statistics.median(r[n, who][0] for r in runs):.2f} s", f"{statistics.median(r[n, who][1] for r in runs):.4f}"]
            else:
                cells += ["not run", ""]
        print(f"| {n} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000, 3000], help="observations for the GP refits")
    parser.add_argument("--fresh-up-to", type=int, default=1000, help="largest size at which scikit-optimize's own fit is timed")
    parser.add_argument("--refit-seeds", type=int, default=3, help="data sets the fits are measured on")
    parser.add_argument("--skip", nargs="+", default=[], choices=["batch", "slots", "refit"])
    parser.add_argument("--surrogates", nargs="+", default=SURROGATES, choices=SURROGATES, help="surrogates of the freed-slot table")
    parser.add_argument("--constraints", type=int, default=0, choices=[0, 1, 2], help="outcome constraints in the freed-slot table")
    options = parser.parse_args()
    with threadpool_limits(limits=1):
        if "batch" not in options.skip:
            print("| 8 points at 100 observations | median | distinct |\n|---|---|---|")
            results = {}
            for name, fn in (("exp_gopt proposer", batch_ours), ("skopt ask(n_points=8)", batch_skopt)):
                runs = [fn(seed) for seed in range(options.repeats)]
                results[name] = statistics.median(t for t, _ in runs)
                print(f"| {name} | {results[name]:.3f} s | {min(d for _, d in runs)} of 8 (worst run) |", flush=True)
            print(f"| ratio | {results['skopt ask(n_points=8)'] / results['exp_gopt proposer']:.1f}x faster | |\n")
        if "slots" not in options.skip:
            grid = [(n, running) for n in (30, 100, 300) for running in (2, 8, 32)]
            print("| freed slot's wait (median) | " + " | ".join(f"{n} obs, {r} running" for n, r in grid) + " |")
            print("|---|" + "---|" * len(grid))
            for surrogate in options.surrogates:
                cells = [f"{1000 * freed_slot(surrogate, n, r, options.repeats, options.constraints):.0f} ms" for n, r in grid]
                name = f"{surrogate}, {options.constraints} constraints" if options.constraints else surrogate
                print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
            print()
        if "refit" not in options.skip:
            refits(options.sizes, options.fresh_up_to, options.refit_seeds)


if __name__ == "__main__":
    main()
