"""Proposing points with scikit-optimize: pending-aware, never repeating, cheap.

scikit-optimize's own ``ask(n_points=k)`` refits the surrogate (kernel
hyper-parameters included) once per point, which costs tens of seconds at a
hundred observations, and it proposes already-evaluated points again on small
discrete spaces. Here:

* the first point of a batch is the optimizer's own choice (computed when the
  last result was told; an asynchronous sweep, whose proposals always have
  running trials beside them, has it skipped: ``tell(..., own_point=False)``);
* each further point is chosen with the *kriging believer* rule: the pending
  points are added to the data with the surrogate's own prediction as their
  outcome (which leaves its mean as it was and shrinks its uncertainty around
  them), the surrogate is refitted *with its kernel fixed* (a GP refit is then
  one Cholesky factorisation) and the acquisition function is minimised over
  candidate points and then, for a GP, polished with L-BFGS from the best one
  (as scikit-optimize does for its own point: without that step every believer
  point is only as precise as a random sample, which ruined asynchronous runs
  where all proposals are believer proposals), so parallel trials spread out as
  sequential ones would. The *constant liar* (the best value seen as every
  pending point's outcome) was used first and measured much worse when trials
  run asynchronously: it makes the region around running trials look solved,
  so the best region was rarely refined (Hartmann-6, 4 slots, 100 evaluations:
  median regret 0.25 over 5 seeds against 0.0058 over 10 with the believer,
  benchmarks/optimization_quality.py);
* no point that is finished or pending is proposed again (unless repeats are
  allowed), and a finite space that has been fully explored is reported as
  exhausted;
* the numerical libraries run on one thread, so the driver does not compete
  with the jobs for cores.

It also makes the surrogates that scikit-optimize 0.10 can no longer build on
current scikit-learn/numpy work: ``GBRT`` (repaired in ``_skopt_internals``, the
one module that uses scikit-optimize's private code) and ``random`` (plain random
search, done here without a model).
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
from typing import Any, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np
from scipy.optimize import fmin_l_bfgs_b
from sklearn.base import clone
from skopt import Optimizer
from skopt.learning import GaussianProcessRegressor
from skopt.space import Categorical, Integer, Space
from threadpoolctl import threadpool_limits

from exp_compat.search import plain
from exp_compat.space import canonical
from hydra_plugins.exp_sweeper._skopt_internals import FastGP, QuantileGBRT, acquisition, acquisition_1d, fitted_kernel, own_next_point

N_CANDIDATES = 10_000  # random candidates the acquisition is evaluated on, per proposed point
ENUMERATE_UP_TO = 20_000  # finite spaces this small are searched exhaustively instead of sampled
# L-BFGS runs per proposed point, from the best candidates (skopt's own point uses 5): each is ~40
# evaluations of the acquisition at ~1 ms, on the critical path of a freed slot
POLISH_STARTS = 1


def _estimator(surrogate: str, seed: int) -> Any:
    if surrogate == "GBRT":
        from sklearn.ensemble import GradientBoostingRegressor

        return QuantileGBRT(base_estimator=GradientBoostingRegressor(loss="quantile", n_estimators=30), random_state=seed)
    return surrogate  # GP, RF, ET: skopt builds them (cook_estimator)


def point_key(point: Sequence[Any]) -> Any:
    return canonical([plain(v) for v in point])


def finite_size(space: Space) -> Optional[int]:
    """How many distinct points a space of only integer and categorical dimensions has (None if infinite)."""
    size = 1
    for dim in space.dimensions:
        if isinstance(dim, Categorical):
            size *= len(dim.categories)
        elif isinstance(dim, Integer):
            size *= int(dim.high) - int(dim.low) + 1
        else:
            return None
    return size


def _enumerate(space: Space) -> Iterator[List[Any]]:
    axes = [list(d.categories) if isinstance(d, Categorical) else list(range(int(d.low), int(d.high) + 1)) for d in space.dimensions]
    for combo in itertools.product(*axes):
        yield list(combo)


class Proposer:
    """Asks and tells one optimization; see the module docstring for how it proposes."""

    def __init__(
        self,
        dimensions: List[Any],
        surrogate: str = "GP",
        acquisition: str = "EI",
        kappa: float = 1.96,
        xi: float = 0.01,
        n_initial_points: int = 10,
        seed: int = 0,
        allow_repeats: bool = False,
    ):
        self.space = Space(dimensions)
        self.surrogate = surrogate
        self.acquisition = acquisition
        self.acq_kwargs = {"kappa": kappa, "xi": xi}
        self.n_initial_points = n_initial_points
        self.allow_repeats = allow_repeats
        self.rng = np.random.RandomState(seed)
        self.size = finite_size(self.space)
        self.X: List[List[Any]] = []
        self.y: List[float] = []
        self.seen: Set[Any] = set()
        self.own_point_current = False  # whether skopt's own next point was computed for all results
        self.optimizer: Optional[Optimizer] = None
        if surrogate != "random":
            with self.single_thread():
                self.optimizer = Optimizer(
                    dimensions,
                    _estimator(surrogate, seed),
                    n_initial_points=n_initial_points,
                    acq_func=acquisition,
                    acq_optimizer="sampling" if surrogate != "GP" else "auto",
                    acq_func_kwargs=dict(self.acq_kwargs),
                    random_state=seed,
                    model_queue_size=1,
                )

    @staticmethod
    def single_thread() -> contextlib.AbstractContextManager:
        return threadpool_limits(limits=1)

    # -- learning ---------------------------------------------------------------------------
    def remember(self, point: Sequence[Any]) -> None:
        """A point that ran (or is running): never propose it again unless repeats are allowed."""
        self.seen.add(point_key(point))

    def tell(self, points: Sequence[Sequence[Any]], values: Sequence[float], own_point: bool = True) -> None:
        """Finished points with finite values (minimised); one refit for all of them.

        ``own_point=False``: only the surrogate is refitted, without scikit-optimize's own next point
        (an acquisition search over 10,000 points polished 5 times, three times over for gp_hedge:
        about 40% of a tell at 100 observations), for an asynchronous sweep, whose proposals all
        have running trials beside them and so never use that point.
        """
        if not points:
            return
        rows = [list(p) for p in points]
        for point in rows:
            self.remember(point)
        self.X += rows
        self.y += [float(v) for v in values]
        self.own_point_current = own_point
        if self.optimizer is not None:
            with self.single_thread():
                self.optimizer.tell(rows, [float(v) for v in values], fit=own_point)
                if not own_point and len(self.X) >= self.n_initial_points:
                    model = clone(self.optimizer.base_estimator_)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # as skopt fits: bounds reached by unused dimensions
                        model.fit(self.space.transform(self.X), self.y)
                    self.optimizer.models = [model]

    @property
    def exhausted(self) -> bool:
        return not self.allow_repeats and self.size is not None and len(self.seen) >= self.size

    # -- proposing --------------------------------------------------------------------------
    def propose(self, k: int, pending: Sequence[Sequence[Any]], recent: Sequence[Tuple[Sequence[Any], float]] = ()) -> List[List[Any]]:
        """Up to ``k`` new points, given the points still running; fewer if the space runs out.

        ``recent``: results not told yet (``tell`` refits the surrogate's hyper-parameters, which is
        slow); they join the data of the quick refit with the kernel kept, so a proposal made the
        moment a result arrives already accounts for it.
        """
        chosen: List[List[Any]] = []
        pool = CandidatePool(self)
        with self.single_thread():
            for _ in range(k):
                point = self._one([*pending, *chosen], pool, recent)
                if point is None:
                    break
                chosen.append(point)
                self.remember(point)
        return chosen

    def _fresh(self, point: Sequence[Any]) -> bool:
        return self.allow_repeats or point_key(point) not in self.seen

    def model_ready(self) -> bool:
        return self.optimizer is not None and bool(self.optimizer.models) and len(self.X) >= self.n_initial_points

    def _one(
        self, pending: List[Sequence[Any]], pool: "CandidatePool", recent: Sequence[Tuple[Sequence[Any], float]]
    ) -> Optional[List[Any]]:
        if self.exhausted:
            return None
        if self.model_ready() and not pending and not recent and self.own_point_current:
            assert self.optimizer is not None  # model_ready() checked it
            proposal = list(own_next_point(self.optimizer))
            if self._fresh(proposal):
                return proposal
        if not self.model_ready():
            return pool.take_random()
        X = self.X + [list(p) for p, _ in recent]
        y = self.y + [float(v) for _, v in recent]
        model, y_opt = self._believer_model(X, y, pending, refit=bool(recent))
        scores = acquisition(pool.transformed, FastGP.of(model, pool.kernel_rows), y_opt, self._believer_acquisition, self.acq_kwargs)
        if isinstance(model, GaussianProcessRegressor) and not pool.enumerated:
            polished = self._polish(model, y_opt, pool.transformed[pool.best_alive(scores, POLISH_STARTS)])
            if polished is not None:
                return polished
        return pool.take_best(scores)

    @property
    def _believer_acquisition(self) -> str:
        return "EI" if self.acquisition == "gp_hedge" else self.acquisition

    def _refit(self, X: Sequence[Sequence[Any]], y: List[float]) -> Any:
        """The surrogate fitted to ``X, y`` with the hyper-parameters of its last full fit kept."""
        assert self.optimizer is not None
        fitted = self.optimizer.models[-1]
        model = clone(fitted)
        if isinstance(fitted, GaussianProcessRegressor):
            model.set_params(kernel=fitted_kernel(fitted), optimizer=None)
        model.fit(self.space.transform(X), y)
        return model

    def _believer_model(self, X: List[List[Any]], y: List[float], pending: List[Sequence[Any]], refit: bool) -> Tuple[Any, float]:
        """The surrogate for ``X, y`` (``refit``: refitted, as ``X, y`` hold results it was not fitted
        to), then refitted with the running points counted as returning what it predicts for them;
        and the best value to improve on, believed ones included (else a running point where the model
        predicts an improvement would stay as attractive as before and be proposed again, nearby)."""
        assert self.optimizer is not None
        model = self._refit(X, y) if refit else self.optimizer.models[-1]
        if not pending:
            return model, min(y)
        believed = [float(v) for v in np.ravel(model.predict(self.space.transform(pending)))]
        return self._refit(X + pending, y + believed), min(y + believed)

    def _polish(self, model: GaussianProcessRegressor, y_opt: float, starts: Any) -> Optional[List[Any]]:
        """The acquisition minimised with L-BFGS from ``starts`` (transformed points), as
        scikit-optimize's ``acq_optimizer="lbfgs"`` does; None if the result is not a new point."""
        bounds = self.space.transformed_bounds
        found = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for start in starts:
                x, value, _ = fmin_l_bfgs_b(
                    acquisition_1d,
                    start,
                    bounds=bounds,
                    approx_grad=False,
                    maxiter=20,
                    args=(model, y_opt, self._believer_acquisition, self.acq_kwargs),
                )
                found.append((float(np.ravel(value)[0]), x))
        if not found:
            return None
        x = min(found, key=lambda f: f[0])[1]
        if not self.space.is_categorical:
            x = np.clip(x, [low for low, _ in bounds], [high for _, high in bounds])
        point = [plain(v) for v in self.space.inverse_transform(x.reshape(1, -1))[0]]
        return point if self._fresh(point) else None


class CandidatePool:
    """The points one ``propose`` call chooses from, drawn and transformed once per call.

    A finite space of up to ENUMERATE_UP_TO points is enumerated (unseen points
    only); otherwise N_CANDIDATES random points, whose freshness is checked only
    when one is chosen (a random point of a continuous space is new).
    """

    def __init__(self, proposer: Proposer):
        self.proposer = proposer
        self._points: Optional[List[List[Any]]] = None
        self._transformed: Any = None
        self._alive: Any = None
        self._rows: Optional[KernelRows] = None

    @property
    def enumerated(self) -> bool:
        """Whether the pool is the whole (finite) space rather than a random sample of it."""
        return self.proposer.size is not None and self.proposer.size <= ENUMERATE_UP_TO

    def _build(self) -> None:
        space = self.proposer.space
        if self.enumerated:
            self._points = [p for p in _enumerate(space) if self.proposer._fresh(p)]
        else:
            self._points = [list(p) for p in space.rvs(n_samples=N_CANDIDATES, random_state=self.proposer.rng)]
        self._alive = np.ones(len(self._points), dtype=bool)

    @property
    def transformed(self) -> Any:
        if self._points is None:
            self._build()
        if self._transformed is None:
            self._transformed = self.proposer.space.transform(self._points) if self._points else np.empty((0, 0))
        return self._transformed

    @property
    def kernel_rows(self) -> KernelRows:
        if self._rows is None:
            self._rows = KernelRows(self.transformed)
        return self._rows

    def _take(self, order: Any) -> Optional[List[Any]]:
        assert self._points is not None
        for index in order:
            if not self._alive[index]:
                continue
            self._alive[index] = False
            point = self._points[index]
            if self.proposer._fresh(point):
                return point
        return None

    def take_random(self) -> Optional[List[Any]]:
        if self._points is None:
            self._build()
        assert self._points is not None  # _build() set it
        return self._take(self.proposer.rng.permutation(len(self._points)))

    def take_best(self, scores: Any) -> Optional[List[Any]]:
        return self._take(np.argsort(scores, kind="stable"))

    def best_alive(self, scores: Any, n: int) -> Any:
        """Indices of the ``n`` best-scoring candidates not taken yet."""
        order = np.argsort(scores, kind="stable")
        return order[self._alive[order]][:n]


class KernelRows:
    """The kernel between a pool's candidates and a GP's training points, kept across the points of
    one ``propose`` call: every model there has the same kernel (the last full fit's) and the same
    training points plus the running ones, so each point adds only the new columns (the full matrix,
    10,000 x n, was most of the cost of scoring the candidates)."""

    def __init__(self, candidates: Any):
        self.candidates = candidates
        self.kernel: Any = None
        self.train: Any = None
        self.matrix: Any = None

    def __call__(self, kernel: Any, train: Any) -> Any:
        known = 0
        if (
            self.matrix is not None
            and kernel == self.kernel
            and len(train) >= len(self.train)
            and np.array_equal(train[: len(self.train)], self.train)
        ):
            known = len(self.train)
        new = kernel(self.candidates, train[known:])
        self.matrix = np.hstack([self.matrix, new]) if known else new
        self.kernel, self.train = kernel, np.array(train)
        return self.matrix
