"""Proposing points with scikit-optimize: pending-aware, never repeating, cheap.

scikit-optimize's own ``ask(n_points=k)`` refits the surrogate (kernel
hyper-parameters included) once per point, which costs tens of seconds at a
hundred observations, and it proposes already-evaluated points again on small
discrete spaces. Here:

* the surrogate is fitted when results are told: at once for batches (``tell``,
  with scikit-optimize's own next point, which is the first point of the next
  batch), or in the background for an asynchronous sweep (``record`` the result,
  ``refit`` in another thread). A proposal never waits for a fit: it uses the
  latest fitted model, and the results that arrived since it was fitted are
  accounted for as described below. Each fit also draws the candidate points
  the proposals until the next fit choose from, and scores what can be scored
  ahead (a GP's kernel between candidates and data, a tree ensemble's
  predictions), so that a freed slot's proposal is a few array operations;
* a GP accounts for running trials with the *kriging believer* rule: the pending
  points (and the results its fit has not seen) are added to the data with the
  surrogate's own prediction (or the result) as their outcome, the surrogate is
  refitted *with its kernel fixed* (one Cholesky factorisation), and the
  acquisition function is minimised over the candidates and then polished with
  L-BFGS from the best one (as scikit-optimize does for its own point: without
  that step every believer point is only as precise as a random sample, which
  ruined asynchronous runs where all proposals are believer proposals). The
  *constant liar* (the best value seen as every pending point's outcome) was
  used first and measured much worse when trials run asynchronously: it makes
  the region around running trials look solved (Hartmann-6, 4 slots, 100
  evaluations: median regret 0.25 over 5 seeds against 0.0058 over 10 with the
  believer, benchmarks/optimization_quality.py);
* forests (RF, ET) are not refitted per proposal either (a forest's fit is its
  whole cost): the background fit is made twice, the second time with the
  running points added at the values the first predicts for them, so that the
  trees split around them (without that, proposals piled up where the forest's
  acquisition is flat, and asynchronous runs did clearly worse); a proposal then
  keeps the trees and updates their leaves' statistics (:class:`ForestLeaves`):
  finished points leave with their believed values and come back with their
  results, in each tree as often as its bootstrap sample held them (so the
  leaves are those the trees' data with the results would give), results the
  fit has not seen join, and running points it was not fitted with join at
  their predicted values;
* boosted trees (GBRT), whose leaves do not average the data, account for running
  points and unseen results by *local penalisation* (González et al., "Batch
  Bayesian Optimization via Local Penalization", 2016): the acquisition is
  multiplied, around each such point, by the probability that the candidate lies
  outside the ball in which, by the data's Lipschitz constant, no point can beat
  the best value (:func:`local_penalty`);
* with outcome constraints (``constrain``; results come with each constraint's slack), a GP of each slack
  is fitted with the surrogate (:class:`Feasibility`), the acquisition (EI or PI) is weighed by the
  probability of meeting every constraint, and the value to improve on is the best result that met them;
  a GP's believer point is then refined by a local random search from several candidates
  (:meth:`Proposer._refine`): the weighed acquisition has peaks on either side of a constraint's edge;
* a GP's hyper-parameters are searched from scratch (scikit-optimize's fit, with
  its restarts) up to ``FRESH_SEARCH_UP_TO`` results; beyond, each fit takes a
  few L-BFGS steps from the last fitted kernel (:func:`bounded_search`): a search
  from scratch costs tens of seconds at a thousand results;
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
import dataclasses
import itertools
import math
import warnings
from typing import Any, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np
from scipy.optimize import fmin_l_bfgs_b
from scipy.spatial.distance import cdist
from scipy.special import ndtr
from sklearn.base import clone
from skopt import Optimizer
from skopt.learning import GaussianProcessRegressor
from skopt.space import Categorical, Integer, Space
from skopt.utils import cook_estimator
from threadpoolctl import threadpool_limits

from exp_compat.space.parameters import canonical, plain
from hydra_plugins.exp_sweeper._skopt_internals import (
    FastGP,
    ForestLeaves,
    QuantileGBRT,
    acquisition,
    acquisition_1d,
    base_estimator,
    fitted_kernel,
    fitted_models,
    own_next_point,
    set_estimator,
    set_fitted_model,
    set_told_values,
)

N_CANDIDATES = 10_000  # random candidates the acquisition is evaluated on, per proposed point
ENUMERATE_UP_TO = 20_000  # finite spaces this small are searched exhaustively instead of sampled
# L-BFGS runs per proposed point, from the best candidates (skopt's own point uses 5): each is ~40
# evaluations of the acquisition at ~1 ms, on the critical path of a freed slot
POLISH_STARTS = 1
# With outcome constraints, believer points are refined by a local random search (Proposer._refine, chosen by
# measurement: benchmarks/multi_objective.py) from this many candidates, in clouds of up to this many points
# per start and round (fewer beyond 100 results: a GP's variance at a point costs O(results^2), so that the
# refinement's cost stays about constant), spread by these fractions of each dimension
REFINE_STARTS = 5
REFINE_CLOUD = 200
REFINE_RADII = (0.1, 0.02, 0.004)
FRESH_SEARCH_UP_TO = 100  # results up to which a GP's hyper-parameters are searched from scratch, with restarts
SEARCH_EVALUATIONS = 8  # beyond, evaluations of the likelihood per fit, from the last fitted kernel


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


@dataclasses.dataclass
class Fitted:
    """A surrogate fitted to the first ``n`` results, with the candidates that proposals choose from
    until the next fit."""

    model: Any
    n: int
    pool: "CandidatePool"
    own_point: bool  # scikit-optimize's own next point was computed with this fit (batches)
    believed: List[Tuple[List[Any], float]] = dataclasses.field(default_factory=list)  # running points fitted with
    feasibility: Optional["Feasibility"] = None  # with outcome constraints: their models, fitted to the same results


class Feasibility:
    """GP models of the outcome constraints' slacks (a slack <= 0: the constraint holds), fitted with the
    surrogate: the acquisition is weighed by the probability that a point meets them all (Gardner et al.,
    "Bayesian Optimization with Inequality Constraints", 2014), so that the surrogate of the objective can
    be fitted to every result, feasible or not, and the search can approach a constraint's edge, where
    constrained optima lie."""

    def __init__(self, models: List[Any]):
        self.models = models

    def probability(self, X: Any) -> Any:
        """The probability that each (transformed) point of ``X`` meets every constraint."""
        probability = np.ones(len(X))
        for model in self.models:
            mean, std = FastGP(model).predict(X, return_std=True)  # negative variances clipped to 0, without skopt's warning
            probability *= ndtr(-np.ravel(mean) / np.maximum(np.ravel(std), 1e-12))
        return probability


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
        self.slacks: List[Sequence[float]] = []  # with outcome constraints, each result's (<= 0: met), in order
        self.n_constraints = 0
        self.constraint_base: Any = None  # the constraints' unfitted GP, made at their first fit
        self.seen: Set[Any] = set()
        self.fitted: Optional[Fitted] = None  # the latest fit, replaced whole (a background thread publishes it)
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
            self.base = clone(base_estimator(self.optimizer))

    @staticmethod
    def single_thread() -> contextlib.AbstractContextManager:
        return threadpool_limits(limits=1)

    # -- learning ---------------------------------------------------------------------------
    def remember(self, point: Sequence[Any]) -> None:
        """A point that ran (or is running): never propose it again unless repeats are allowed."""
        self.seen.add(point_key(point))

    def constrain(self, n_constraints: int) -> None:
        """Results come with this many constraint slacks (``tell``/``record``'s ``slacks``; <= 0: met)."""
        self.n_constraints = n_constraints

    def tell(self, points: Sequence[Sequence[Any]], values: Sequence[float], slacks: Sequence[Sequence[float]] = ()) -> None:
        """Finished points with finite values (minimised), the surrogate refitted now with
        scikit-optimize's own next point (batches: the next batch's first point)."""
        self._add(points, values, slacks, fit=True)

    def record(self, points: Sequence[Sequence[Any]], values: Sequence[float], slacks: Sequence[Sequence[float]] = ()) -> None:
        """Finished points with finite values (minimised), learnt by the next :meth:`refit` (an
        asynchronous sweep's, in the background); proposals made before it account for them."""
        self._add(points, values, slacks, fit=False)

    def retell(self, values: Sequence[float]) -> None:
        """New values for every result told so far, in the order told (several objectives: another
        scalarisation). Call only while no refit runs; the next fit learns them."""
        if len(values) != len(self.y):
            raise ValueError(f"retell: {len(values)} values for {len(self.y)} results")
        self.y = [float(v) for v in values]
        if self.optimizer is not None:
            set_told_values(self.optimizer, self.y)

    def _add(self, points: Sequence[Sequence[Any]], values: Sequence[float], slacks: Sequence[Sequence[float]], fit: bool) -> None:
        if not points:
            return
        if len(slacks) != (len(points) if self.n_constraints else 0):
            raise ValueError(f"{len(slacks)} constraint slacks told for {len(points)} points with {self.n_constraints} constraints")
        rows = [list(p) for p in points]
        floats = [float(v) for v in values]
        for point in rows:
            self.remember(point)
        self.X += rows
        self.slacks += [[float(v) for v in s] for s in slacks]
        self.y += floats  # after X and the slacks: a background refit reads len(y) first
        if self.optimizer is None:
            return
        n = len(self.y)
        fit = fit and n >= self.n_initial_points
        with self.single_thread():
            if fit:
                set_estimator(self.optimizer, self._estimator(n))
            self.optimizer.tell(rows, floats, fit=fit)
            # scikit-optimize's own point knows nothing of constraints
            feasibility = self._feasibility(n) if fit else None
        if fit:
            self._publish(fitted_models(self.optimizer)[-1], n, own_point=not self.n_constraints, feasibility=feasibility)

    def refit(self, pending: Sequence[Sequence[Any]] = ()) -> None:
        """Fit the surrogate to every result recorded so far, and draw and score the candidates of the
        proposals until the next fit. Safe in a background thread while the sweep records results and
        proposes (with the previous fit) in the main one; one refit at a time.

        A forest is fitted a second time with the ``pending`` (running) points added at the values the
        first fit predicts for them, so that its trees split around them (the kriging believer, whose
        proposals otherwise pile up where a forest's acquisition is flat); a proposal then puts the
        real results of these points in their place in the leaves (:meth:`_forest_point`)."""
        n = len(self.y)
        if self.optimizer is None or n < self.n_initial_points or (self.fitted is not None and self.fitted.n == n):
            return
        X, y = self.X[:n], self.y[:n]
        running = [list(p) for p in pending]
        with self.single_thread():
            model = self._fit(self._estimator(n), X, y)
            set_fitted_model(self.optimizer, model)  # what the plots draw
            believed: List[Tuple[List[Any], float]] = []
            if running and is_forest(model):
                believed = list(zip(running, (float(v) for v in model.predict(self.space.transform(running)))))
                model = self._fit(clone(model), X + running, y + [v for _, v in believed])
            feasibility = self._feasibility(n)
        self._publish(model, n, own_point=False, believed=believed, feasibility=feasibility)

    def _feasibility(self, n: int) -> Optional[Feasibility]:
        """The constraints' models fitted to the first ``n`` results (None without constraints)."""
        if not self.n_constraints:
            return None
        if self.constraint_base is None:
            self.constraint_base = cook_estimator("GP", space=self.space, random_state=self.rng.randint(2**31), noise="gaussian")
        X = self.X[:n]
        return Feasibility([self._fit(clone(self.constraint_base), X, [s[j] for s in self.slacks[:n]]) for j in range(self.n_constraints)])

    def _fit(self, model: Any, X: List[List[Any]], y: List[float]) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # as skopt fits: bounds reached by unused dimensions
            return model.fit(self.space.transform(X), y)

    def _publish(
        self,
        model: Any,
        n: int,
        own_point: bool,
        believed: Optional[List[Tuple[List[Any], float]]] = None,
        feasibility: Optional[Feasibility] = None,
    ) -> None:
        pool = CandidatePool(self, model, feasibility)
        if not own_point:  # a background fit scores ahead; a batch's first point is skopt's own
            with self.single_thread():
                pool.score()
        self.fitted = Fitted(model, n, pool, own_point, believed or [], feasibility)

    def _estimator(self, n: int) -> Any:
        """An unfitted surrogate for ``n`` results; a GP's hyper-parameters as the module docstring says."""
        model = clone(self.base)
        last = self.fitted.model if self.fitted is not None else None
        if not isinstance(model, GaussianProcessRegressor) or last is None or n <= FRESH_SEARCH_UP_TO:
            return model
        return model.set_params(kernel=fitted_kernel(last, fixed_noise=False), optimizer=bounded_search, n_restarts_optimizer=0)

    @property
    def exhausted(self) -> bool:
        return not self.allow_repeats and self.size is not None and len(self.seen) >= self.size

    # -- proposing --------------------------------------------------------------------------
    def propose(self, k: int, pending: Sequence[Sequence[Any]]) -> List[List[Any]]:
        """Up to ``k`` new points, given the points still running; fewer if the space runs out."""
        chosen: List[List[Any]] = []
        fitted = self.fitted  # one fit for the whole call, whatever a background refit publishes meanwhile
        pool = fitted.pool if fitted is not None else CandidatePool(self)
        with self.single_thread():
            for _ in range(k):
                point = self._one(fitted, pool, [*pending, *chosen])
                if point is None:
                    break
                chosen.append(point)
                self.remember(point)
        return chosen

    def _fresh(self, point: Sequence[Any]) -> bool:
        return self.allow_repeats or point_key(point) not in self.seen

    def _one(self, fitted: Optional[Fitted], pool: "CandidatePool", pending: List[Sequence[Any]]) -> Optional[List[Any]]:
        if self.exhausted:
            return None
        if fitted is None:
            return pool.take_random()
        n = len(self.y)
        if fitted.own_point and fitted.n == n and not pending:
            assert self.optimizer is not None  # fitted by it
            proposal = list(own_next_point(self.optimizer))
            if self._fresh(proposal):
                return proposal
        X, y = self.X[:n], self.y[:n]
        if pool.spent:  # every candidate drawn with the fit was taken (a small finite space): draw again
            pool = CandidatePool(self, fitted.model, fitted.feasibility)
        if isinstance(fitted.model, GaussianProcessRegressor):
            point = self._believer_point(fitted, pool, X, y, pending)
        elif is_forest(fitted.model):
            point = self._forest_point(fitted, pool, X, y, pending)
        else:
            point = self._penalised_point(fitted, pool, X, y, pending)
        # the pool's candidates were all taken or seen since it was drawn (a finite space): any unseen point
        return point if point is not None else CandidatePool(self).take_random()

    @property
    def _believer_acquisition(self) -> str:
        return "EI" if self.acquisition == "gp_hedge" else self.acquisition

    def _believer_point(
        self, fitted: Fitted, pool: "CandidatePool", X: List[List[Any]], y: List[float], pending: List[Sequence[Any]]
    ) -> Optional[List[Any]]:
        model, y_opt = self._believer_model(fitted, X, y, pending)
        scores = self._weighed(
            pool, acquisition(pool.transformed, pool.predictor(model), y_opt, self._believer_acquisition, self.acq_kwargs), y_opt
        )
        if not pool.enumerated:
            # constraints make the acquisition multimodal (peaks on either side of an edge): a refinement from several
            if fitted.feasibility is None:
                polished = self._polish(model, y_opt, pool.transformed[pool.best_alive(scores, POLISH_STARTS)])
            else:
                polished = self._refine(model, y_opt, pool.transformed[pool.best_alive(scores, REFINE_STARTS)], fitted.feasibility)
            if polished is not None:
                return polished
        return pool.take_best(scores)

    def _refine(self, model: Any, y_opt: float, starts: Any, feasibility: Feasibility) -> Optional[List[Any]]:
        """The weighed acquisition minimised by a local random search around ``starts`` (transformed
        points) in shrinking clouds, every cloud scored at once: with constraints the acquisition has peaks
        on either side of an edge, which several starts find, and one vectorised scoring costs less than
        L-BFGS steps of one point each. None if the result is not a new point."""
        bounds = np.array(self.space.transformed_bounds, dtype=float)
        low, high = bounds[:, 0], bounds[:, 1]
        model = FastGP(model)

        def score(X: Any) -> Any:
            probability = feasibility.probability(X)
            values = acquisition(X, model, y_opt, self._believer_acquisition, self.acq_kwargs) if math.isfinite(y_opt) else None
            return weigh(values, probability, y_opt)

        best = np.asarray(starts, dtype=float)
        scores = score(best)
        size = max(10, min(REFINE_CLOUD, REFINE_CLOUD * 100**2 // max(1, len(self.y)) ** 2))
        for radius in REFINE_RADII:
            cloud = best[:, None, :] + self.rng.normal(scale=radius * (high - low), size=(len(best), size, len(low)))
            cloud = np.clip(cloud.reshape(-1, len(low)), low, high)
            points, values = np.vstack([best, cloud]), np.concatenate([scores, score(cloud)])
            keep = np.argsort(values, kind="stable")[: len(best)]
            best, scores = points[keep], values[keep]
        point = [plain(v) for v in self.space.inverse_transform(best[:1])[0]]
        return point if self._fresh(point) else None

    def _best(self, y: Sequence[float], believed: Sequence[float] = ()) -> float:
        """The value to improve on: the best result (with constraints, the best that met them all; infinite
        before one has), or a running point's believed value if better."""
        met = [v for v, s in zip(y, self.slacks) if all(c <= 0 for c in s)] if self.n_constraints else list(y)
        return min([*met, *believed], default=math.inf)

    @staticmethod
    def _weighed(pool: "CandidatePool", scores: Any, y_opt: float) -> Any:
        """With constraints: the acquisition (EI or PI, negated: lower is better) times the probability of
        meeting them; before any result has met them, that probability alone."""
        probability = pool.feasibility_scores()
        return scores if probability is None else weigh(scores, probability, y_opt)

    def _forest_point(
        self, fitted: Fitted, pool: "CandidatePool", X: List[List[Any]], y: List[float], pending: List[Sequence[Any]]
    ) -> Optional[List[Any]]:
        """The kriging believer with a forest's trees kept (:class:`ForestLeaves`): the points it was
        fitted with as running that have finished leave its leaves with their believed values and come
        back with their results, as do the other results its fit has not seen; running points it was not
        fitted with join with the values it predicts for them. The acquisition is then minimised over
        the candidates."""
        leaves = pool.forest_leaves()
        still = {point_key(p) for p in pending}
        # finished (or failed) since: the values it was fitted with out, as often as each tree's sample held
        # them (its rows follow the fitted results); their results back in at the same places, below
        gone = {point_key(p): (p, v, fitted.n + j) for j, (p, v) in enumerate(fitted.believed) if point_key(p) not in still}
        in_bag = {}
        if gone:
            points, values, rows = zip(*gone.values())
            in_bag = dict(zip(gone, leaves.in_bag(rows)))
            leaves = leaves.with_points(self.space.transform(list(points)), values, remove=True, counts=list(in_bag.values()))
        if len(y) > fitted.n:
            ones = np.ones(len(leaves.trees))
            counts = [in_bag.get(point_key(p), ones) for p in X[fitted.n :]]
            leaves = leaves.with_points(self.space.transform(X[fitted.n :]), y[fitted.n :], counts=counts)
        fitted_with = {point_key(p) for p, _ in fitted.believed}
        new = [p for p in pending if point_key(p) not in fitted_with]
        believed = [v for p, v in fitted.believed if point_key(p) in still]
        if new:
            running = self.space.transform(new)
            guessed = [float(v) for v in leaves.predict_at(leaves.leaves(running))[0]]
            leaves = leaves.with_points(running, guessed)
            believed += guessed
        mean, std = leaves.predict_at(leaves.candidate_leaves)
        model = Predicted(fitted.model, pool.transformed, mean, std)
        y_opt = self._best(y, believed)
        scores = acquisition(pool.transformed, model, y_opt, self._believer_acquisition, self.acq_kwargs)
        return pool.take_best(self._weighed(pool, scores, y_opt))

    def _penalised_point(
        self, fitted: Fitted, pool: "CandidatePool", X: List[List[Any]], y: List[float], pending: List[Sequence[Any]]
    ) -> Optional[List[Any]]:
        """The candidate of best acquisition under the fitted boosted trees, penalised around the
        results they have not seen and the running points (module docstring)."""
        y_opt = self._best(y)
        scores = self._weighed(
            pool, acquisition(pool.transformed, pool.predictor(fitted.model), y_opt, self._believer_acquisition, self.acq_kwargs), y_opt
        )
        y_opt = y_opt if math.isfinite(y_opt) else min(y)  # the penalty's radius, before any result met the constraints
        unseen = X[fitted.n :]
        if unseen or pending:
            centres = self.space.transform([*unseen, *pending])
            mean, std = (np.ravel(a).astype(float) for a in fitted.model.predict(centres, return_std=True))
            mean[: len(unseen)], std[: len(unseen)] = y[fitted.n :], 0.0  # known outcomes
            utility = scores.max() - scores + 1e-300  # >= 0 for every acquisition (lower scores are better)
            lipschitz = data_lipschitz(self.space.transform(X), y)
            scores = -utility * local_penalty(pool.transformed, centres, mean, std, y_opt, lipschitz)
        return pool.take_best(scores)

    def _refit(self, fitted: Any, X: Sequence[Sequence[Any]], y: List[float]) -> Any:
        """The surrogate fitted to ``X, y`` with the hyper-parameters of ``fitted`` kept."""
        model = clone(fitted)
        if isinstance(fitted, GaussianProcessRegressor):
            model.set_params(kernel=fitted_kernel(fitted), optimizer=None)
        model.fit(self.space.transform(X), y)
        return model

    def _believer_model(self, fitted: Fitted, X: List[List[Any]], y: List[float], pending: List[Sequence[Any]]) -> Tuple[Any, float]:
        """The surrogate for ``X, y`` (refitted, kernel kept, where they hold results its fit has not
        seen), then refitted with the running points counted as returning what it predicts for them;
        and the best value to improve on, believed ones included (else a running point where the model
        predicts an improvement would stay as attractive as before and be proposed again, nearby)."""
        model = self._refit(fitted.model, X, y) if len(y) > fitted.n else fitted.model
        if not pending:
            return model, self._best(y)
        running = self.space.transform(pending)
        believed = [float(v) for v in np.ravel(model.predict(running))]
        bar = believed
        if fitted.feasibility is not None:  # a running point likely to break a constraint is no bar to clear
            bar = [v for v, likely in zip(believed, fitted.feasibility.probability(running) >= 0.5) if likely]
        return self._refit(model, X + [list(p) for p in pending], y + believed), self._best(y, bar)

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


class _Spent(Exception):
    """The search's evaluations are used up."""


def bounded_search(objective: Any, initial: Any, bounds: Any) -> Tuple[Any, float]:
    """A GP's hyper-parameter search beyond FRESH_SEARCH_UP_TO results (scikit-learn's ``optimizer``
    callable): L-BFGS from the last fitted kernel, ended after SEARCH_EVALUATIONS evaluations of the
    likelihood (L-BFGS's own ``maxfun`` is checked between iterations only), at the best point seen.
    Each evaluation costs O(n^2) per dimension and a factorisation; from the last kernel a few steps
    follow the optimum as results are added, where a search from scratch takes dozens of evaluations
    per start, and scikit-optimize makes three starts."""
    from scipy.optimize import minimize

    best: List[Any] = [np.asarray(initial, dtype=float), np.inf]
    calls = 0

    def counted(theta: Any) -> Any:
        nonlocal calls
        if calls >= SEARCH_EVALUATIONS:
            raise _Spent
        calls += 1
        value, gradient = objective(theta)
        if value < best[1]:
            best[:] = [np.array(theta), float(value)]
        return value, gradient

    try:
        minimize(counted, initial, method="L-BFGS-B", jac=True, bounds=bounds)
    except _Spent:
        pass
    return best[0], best[1]


class CandidatePool:
    """The points proposals choose from: drawn with each fit, for every proposal until the next one
    (with what the fit's model says of them, computed once), or per call before any fit.

    A finite space of up to ENUMERATE_UP_TO points is enumerated (unseen points
    only); otherwise N_CANDIDATES random points, whose freshness is checked only
    when one is chosen (a random point of a continuous space is new).
    """

    def __init__(self, proposer: Proposer, model: Any = None, feasibility: Optional[Feasibility] = None):
        self.proposer = proposer
        self.model = model  # the fit whose predictions on the candidates are kept (None: no model yet)
        self.feasibility = feasibility
        self._probability: Any = None
        self._points: Optional[List[List[Any]]] = None
        self._transformed: Any = None
        self._alive: Any = None
        self._rows: Optional[KernelRows] = None
        self._predicted: Optional[Tuple[Any, Any]] = None
        self._leaves: Optional[ForestLeaves] = None

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
    def spent(self) -> bool:
        """No candidate left to take."""
        if self._points is None:
            self._build()
        return not self._alive.any()

    def score(self) -> None:
        """Compute ahead what proposals with this pool's model need: the GP's kernel between the
        candidates and its data, a tree ensemble's predictions."""
        if self.spent:
            return
        self.feasibility_scores()
        if isinstance(self.model, GaussianProcessRegressor):
            self._kernel_rows()(self.model.kernel_, self.model.X_train_)
        elif is_forest(self.model):
            self.forest_leaves()
        elif self.model is not None:
            self.predictor(self.model)

    def feasibility_scores(self) -> Any:
        """The candidates' probability of meeting the constraints (once; None without constraints)."""
        if self.feasibility is not None and self._probability is None:
            self._probability = self.feasibility.probability(self.transformed)
        return self._probability

    def forest_leaves(self) -> ForestLeaves:
        """The pool's forest with its candidates' leaves found (once)."""
        if self._leaves is None:
            self._leaves = ForestLeaves(self.model, self.transformed)
        return self._leaves

    def _kernel_rows(self) -> KernelRows:
        if self._rows is None:
            self._rows = KernelRows(self.transformed)
        return self._rows

    def predictor(self, model: Any) -> Any:
        """``model`` as the acquisition functions call it, with what is kept for these candidates."""
        if isinstance(model, GaussianProcessRegressor):
            return FastGP(model, self._kernel_rows())
        if model is not self.model:
            return model
        if self._predicted is None:
            mean, std = model.predict(self.transformed, return_std=True)
            self._predicted = (np.asarray(mean), np.asarray(std))
        return Predicted(model, self.transformed, *self._predicted)

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


def weigh(scores: Any, probability: Any, y_opt: float) -> Any:
    """Acquisition scores (EI or PI, negated: lower is better) times the probability of meeting the
    constraints; before any result has met them (``y_opt`` infinite), that probability alone (negated)."""
    return -probability if not math.isfinite(y_opt) else scores * probability


def is_forest(model: Any) -> bool:
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

    return isinstance(model, (RandomForestRegressor, ExtraTreesRegressor))


class Predicted:
    """A surrogate whose predictions at one array of points are known: asked about that array (the
    very object), it answers them; about any other points, it predicts."""

    def __init__(self, model: Any, points: Any, mean: Any, std: Any):
        self.model, self.points, self.mean, self.std = model, points, mean, std

    def predict(self, X: Any, return_std: bool = False) -> Any:
        if X is not self.points:
            return self.model.predict(X, return_std=return_std)
        return (self.mean, self.std) if return_std else self.mean


def data_lipschitz(points: Any, values: Sequence[float]) -> float:
    """An estimate of the objective's Lipschitz constant (in the transformed space): the steepest slope
    between a result and its nearest neighbour. Positive, also when no two results differ."""
    from sklearn.neighbors import NearestNeighbors

    X, y = np.asarray(points, dtype=float), np.asarray(values, dtype=float)
    if len(X) < 2:
        return 1.0
    distance, index = NearestNeighbors(n_neighbors=2).fit(X).kneighbors(X)
    apart = distance[:, 1] > 0
    slopes = np.abs(y - y[index[:, 1]])[apart] / distance[apart, 1]
    steepest = float(slopes.max()) if slopes.size else 0.0
    return steepest if steepest > 0 else 1.0


def local_penalty(candidates: Any, centres: Any, mean: Any, std: Any, best: float, lipschitz: float) -> Any:
    """For each candidate, the probability that it lies outside every centre's ball of radius
    ``(f(centre) - best) / lipschitz``, in which no point can beat ``best`` (minimising), with
    ``f(centre) ~ N(mean, std^2)``: González et al. 2016. A std of 0 (a known result) makes the ball sharp."""
    distance = cdist(candidates, centres)
    radius = np.maximum(mean - best, 0.0) / lipschitz
    spread = np.maximum(std / lipschitz, 1e-12)
    return np.prod(ndtr((distance - radius) / spread), axis=1)


class KernelRows:
    """The kernel between a pool's candidates and a GP's training points, kept across the proposals
    until the next fit: every model there has the fit's kernel and its training points plus unseen
    results and running points, so each proposal adds only the new columns (the full matrix, 10,000 x n,
    was most of the cost of scoring the candidates; the fit computes it in the background)."""

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
