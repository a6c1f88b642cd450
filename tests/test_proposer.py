"""The proposer, in process, against real scikit-optimize models."""

from __future__ import annotations

import numpy as np
import pytest
from skopt.space import Categorical, Integer, Real

from hydra_plugins.exp_sweeper._proposer import Proposer, point_key
from hydra_plugins.exp_sweeper.config import Acquisition, Surrogate

# CI runs these again against the newest scikit-learn and numpy (.ci/run, -m upstream): they use skopt's private code
pytestmark = pytest.mark.upstream


def mixed_dims():
    return [
        Real(-5.0, 5.0, name="a"),
        Real(1e-4, 1.0, prior="log-uniform", name="lr"),
        Integer(0, 10, name="n"),
        Categorical(["x", "y", "z"], name="c"),
    ]


def objective(point):
    a, lr, n, c = point
    return (a - 1) ** 2 + abs(np.log10(lr) + 2) + (n - 3) ** 2 / 10 + {"x": 0.0, "y": 0.5, "z": 1.0}[c]


def in_bounds(point):
    a, lr, n, c = point
    return -5 <= a <= 5 and 1e-4 <= lr <= 1 and isinstance(n, (int, np.integer)) and 0 <= n <= 10 and c in "xyz"


@pytest.mark.parametrize("surrogate", [s.value for s in Surrogate])
def test_every_surrogate_optimizes_a_mixed_space(surrogate):
    proposer = Proposer(mixed_dims(), surrogate=surrogate, n_initial_points=5, seed=1)
    for _ in range(6):
        batch = proposer.propose(3, pending=[])
        assert len(batch) == 3 and all(in_bounds(p) for p in batch)
        assert len({point_key(p) for p in batch}) == 3
        proposer.tell(batch, [objective(p) for p in batch])
    assert min(proposer.y) < 3.0  # random points average about 9 here


@pytest.mark.parametrize("acquisition", [a.value for a in Acquisition])
def test_every_acquisition_function(acquisition):
    proposer = Proposer(mixed_dims(), acquisition=acquisition, n_initial_points=4, seed=2)
    for _ in range(4):
        batch = proposer.propose(2, pending=[])
        proposer.tell(batch, [objective(p) for p in batch])
    assert len(proposer.X) == 8 and len({point_key(p) for p in proposer.X}) == 8


def test_pending_points_are_never_proposed_again():
    proposer = Proposer([Integer(0, 3, name="i"), Categorical(["a", "b"], name="c")], n_initial_points=2, seed=0)
    pending = proposer.propose(3, pending=[])
    later = proposer.propose(3, pending=pending)
    assert len({point_key(p) for p in pending + later}) == 6


def test_a_finite_space_is_exhausted_without_repeats():
    proposer = Proposer([Categorical(["a", "b", "c", "d"], name="c")], n_initial_points=2, seed=0)
    told = []
    for _ in range(12):
        batch = proposer.propose(1, pending=[])
        if not batch:
            break
        proposer.tell(batch, [1.0])
        told += batch
    assert sorted(p[0] for p in told) == ["a", "b", "c", "d"] and proposer.exhausted


def test_repeats_when_allowed():
    proposer = Proposer([Categorical(["a", "b"], name="c")], n_initial_points=1, seed=0, allow_repeats=True)
    for _ in range(6):
        batch = proposer.propose(1, pending=[])
        proposer.tell(batch, [1.0])
    assert len(proposer.X) == 6 and not proposer.exhausted


def test_a_batch_at_100_observations_is_spread_out():
    proposer = Proposer(mixed_dims() + [Real(0, 1, name="u"), Integer(1, 5, name="k")], n_initial_points=10, seed=3)
    rng = np.random.RandomState(0)
    X = proposer.space.rvs(100, random_state=rng)
    proposer.tell(X, [objective(p[:4]) + p[4] + p[5] for p in X])
    batch = proposer.propose(8, pending=[])
    assert len(batch) == 8 and len({point_key(p) for p in batch}) == 8
    spread = proposer.space.transform(batch)
    distances = [np.linalg.norm(spread[i] - spread[j]) for i in range(8) for j in range(i)]
    assert min(distances) > 1e-3  # the believer keeps points apart instead of piling onto one optimum


def test_fast_gp_prediction_equals_skopts():
    """FastGP, with the candidates' kernel matrix kept across the believer models of one proposal
    (training points growing by the running ones) and rebuilt when the kernel changes, predicts
    what skopt's GP predicts."""
    from skopt.learning import GaussianProcessRegressor

    from hydra_plugins.exp_sweeper._proposer import CandidatePool
    from hydra_plugins.exp_sweeper._skopt_internals import FastGP

    proposer = Proposer(mixed_dims(), n_initial_points=5, seed=4)
    X = proposer.space.rvs(43, random_state=np.random.RandomState(1))
    proposer.tell(X[:40], [objective(p) for p in X[:40]])
    pool = CandidatePool(proposer)
    models = [proposer._believer_model(proposer.fitted, proposer.X, proposer.y, X[40 : 40 + k])[0] for k in range(4)]
    proposer.tell(X[40:], [objective(p) for p in X[40:]])  # a new full fit: another kernel
    models.append(proposer.optimizer.models[-1])
    for model in models:
        assert isinstance(model, GaussianProcessRegressor)
        mean, std = model.predict(pool.transformed, return_std=True)
        fast = pool.predictor(model)
        assert isinstance(fast, FastGP)
        fast_mean, fast_std = fast.predict(pool.transformed, return_std=True)
        # the variance is a small difference of large terms through an ill-conditioned K^-1: equal up to rounding
        assert np.allclose(mean, fast_mean) and np.allclose(std, fast_std, rtol=1e-3, atol=1e-6)
        assert fast.rows.matrix.shape == (len(pool.transformed), len(model.X_train_))
    assert models[-1].kernel_ != models[0].kernel_


def test_believer_points_are_polished_beyond_the_best_random_candidate(monkeypatch):
    """With only 20 random candidates, a point proposed beside a running one is better for the
    believer model's acquisition than every candidate: it was polished with L-BFGS from the best
    ones, not just picked from the sample."""
    from skopt.acquisition import gaussian_acquisition_1D

    from hydra_plugins.exp_sweeper import _proposer

    monkeypatch.setattr(_proposer, "N_CANDIDATES", 20)
    polishing = {}
    polish = Proposer._polish

    def recorded(self, model, y_opt, starts):
        polishing.update(model=model, y_opt=y_opt, starts=np.array(starts))
        return polish(self, model, y_opt, starts)

    monkeypatch.setattr(Proposer, "_polish", recorded)
    proposer = Proposer([Real(-2.0, 2.0, name="a"), Real(-2.0, 2.0, name="b")], n_initial_points=8, seed=3)
    rng = np.random.RandomState(0)
    points = [[float(v) for v in rng.uniform(-2, 2, 2)] for _ in range(12)]
    proposer.tell(points, [(a - 0.3) ** 2 + (b + 0.5) ** 2 for a, b in points])
    pending = proposer.propose(1, pending=[])
    point = proposer.propose(1, pending=pending)[0]

    def acquisition(at):
        values = gaussian_acquisition_1D(at, polishing["model"], polishing["y_opt"], "EI", proposer.acq_kwargs)[0]
        return float(np.ravel(values)[0])

    best_candidate = min(acquisition(start) for start in polishing["starts"])
    assert acquisition(proposer.space.transform([point])[0]) < best_candidate - 1e-6, point


def test_beyond_the_fresh_searches_a_gp_fit_takes_a_few_steps_from_its_last_kernel(monkeypatch):
    """A search from scratch (scikit-optimize's, with restarts) costs tens of seconds at a thousand results:
    beyond FRESH_SEARCH_UP_TO each fit starts from the last fitted kernel and evaluates the likelihood a
    bounded number of times."""
    from hydra_plugins.exp_sweeper import _proposer
    from hydra_plugins.exp_sweeper._skopt_internals import fitted_kernel

    starts, evaluations = [], []
    search = _proposer.bounded_search

    def spy(objective, initial, bounds):
        starts.append(np.array(initial))
        return search(lambda theta, **kw: evaluations.append(1) or objective(theta, **kw), initial, bounds)

    monkeypatch.setattr(_proposer, "bounded_search", spy)
    proposer = Proposer(mixed_dims(), n_initial_points=5, seed=4)
    X = proposer.space.rvs(_proposer.FRESH_SEARCH_UP_TO + 10, random_state=np.random.RandomState(1))
    n = _proposer.FRESH_SEARCH_UP_TO
    proposer.record(X[:n], [objective(p) for p in X[:n]])
    proposer.refit()
    assert starts == []  # up to FRESH_SEARCH_UP_TO: scikit-optimize's own search
    last = proposer.fitted.model
    proposer.record(X[n:], [objective(p) for p in X[n:]])
    proposer.refit()
    assert len(starts) == 1 and np.allclose(starts[0], fitted_kernel(last, fixed_noise=False).theta)
    assert 1 <= len(evaluations) <= _proposer.SEARCH_EVALUATIONS
    assert proposer.fitted.n == n + 10 and len(proposer.fitted.model.X_train_) == n + 10


@pytest.mark.parametrize("surrogate", ["RF", "ET"])
def test_forest_leaves_predict_as_skopt_and_take_points_in_and_out(surrogate):
    """ForestLeaves reproduces skopt's forest mean and standard deviation from the leaves' statistics; a point
    added to the leaves moves the predictions near it towards its value, and taking it out again restores them."""
    from sklearn.base import clone

    from hydra_plugins.exp_sweeper._skopt_internals import ForestLeaves

    proposer = Proposer(mixed_dims(), surrogate=surrogate, n_initial_points=5, seed=4)
    X = proposer.space.transform(proposer.space.rvs(61, random_state=np.random.RandomState(1)))
    y = np.array([float(np.sum(row)) for row in X])
    forest = clone(proposer.base).fit(X[:60], y[:60])
    candidates = proposer.space.transform(proposer.space.rvs(300, random_state=np.random.RandomState(2)))
    leaves = ForestLeaves(forest, candidates)
    mean, std = leaves.predict_at(leaves.candidate_leaves)
    skopt_mean, skopt_std = forest.predict(candidates, return_std=True)
    assert np.allclose(mean, skopt_mean) and np.allclose(std, skopt_std)
    at = leaves.leaves(X[60:])
    before = leaves.predict_at(at)[0][0]
    grown = leaves.with_points(X[60:], [before + 100.0])
    assert grown.predict_at(at)[0][0] > before + 1.0  # every tree's leaf there moved towards the new value
    back = grown.with_points(X[60:], [before + 100.0], remove=True)
    assert np.allclose(back.predict_at(back.candidate_leaves)[0], mean) and np.allclose(back.predict_at(back.candidate_leaves)[1], std)


@pytest.mark.parametrize("surrogate", ["RF", "ET"])
def test_forest_leaves_replace_a_fitted_value_as_if_the_trees_had_been_grown_with_the_result(surrogate):
    """A running point's believed value taken out of the leaves as often as each tree's sample held it (RF
    draws bootstrap samples: some trees have it twice, some not at all) and its result put back at the same
    places leaves every leaf's weight, mean and variance what the trees' data with the result would give."""
    from sklearn.base import clone

    from hydra_plugins.exp_sweeper._skopt_internals import ForestLeaves

    proposer = Proposer(mixed_dims(), surrogate=surrogate, n_initial_points=5, seed=4)
    X = proposer.space.transform(proposer.space.rvs(60, random_state=np.random.RandomState(1)))
    y = np.array([float(np.sum(row)) for row in X])
    forest = clone(proposer.base).fit(X, y)  # the last row: a running point at its believed value
    leaves = ForestLeaves(forest, X)
    counts = leaves.in_bag([59])
    if surrogate == "RF":
        assert {0.0, 1.0, 2.0} <= set(counts[0])  # out of some trees' samples, twice in others
    else:
        assert set(counts[0]) == {1.0}
    result = y[59] + 5.0
    replaced = leaves.with_points(X[59:], [y[59]], remove=True, counts=counts).with_points(X[59:], [result], counts=counts)
    data = np.concatenate([y[:59], [result]])
    for t, (tree, samples) in enumerate(zip(forest.estimators_, forest.estimators_samples_)):
        weights = np.bincount(samples, minlength=60).astype(float)
        node = tree.tree_.apply(X.astype(np.float32))[59]
        inside = (tree.tree_.apply(X.astype(np.float32)) == node) & (weights > 0)
        mean = np.average(data[inside], weights=weights[inside])
        variance = np.average((data[inside] - mean) ** 2, weights=weights[inside])
        at = leaves.offsets[t] + node
        assert replaced.weight[at] == pytest.approx(weights[inside].sum())
        assert replaced.value[at] == pytest.approx(mean) and replaced.variance[at] == pytest.approx(variance)


def test_the_optimizer_attributes_written_behind_tell_are_what_tell_uses():
    """``_skopt_internals``' access to the Optimizer's estimator, told values and fitted models: ``tell`` clones
    the estimator set, and learns the values told again at its next fit; the models are the latest fit's."""
    from skopt import Optimizer
    from skopt.learning import ExtraTreesRegressor, GaussianProcessRegressor

    from hydra_plugins.exp_sweeper._skopt_internals import base_estimator, fitted_models, set_estimator, set_fitted_model, set_told_values

    optimizer = Optimizer([Real(0.0, 1.0)], "GP", n_initial_points=3, acq_optimizer="sampling", random_state=0, model_queue_size=1)
    assert isinstance(base_estimator(optimizer), GaussianProcessRegressor) and fitted_models(optimizer) == []
    optimizer.tell([[0.1], [0.5], [0.9]], [1.0, 2.0, 3.0])
    [first] = fitted_models(optimizer)
    assert first.predict([[0.1]])[0] < first.predict([[0.9]])[0]
    set_told_values(optimizer, [3.0, 2.0, 1.0])
    optimizer.tell([0.3], 2.5)
    [refit] = fitted_models(optimizer)
    assert refit.predict([[0.1]])[0] > refit.predict([[0.9]])[0]
    set_estimator(optimizer, ExtraTreesRegressor(n_estimators=5, random_state=0))
    optimizer.tell([0.7], 1.5)
    assert isinstance(fitted_models(optimizer)[-1], ExtraTreesRegressor)
    set_fitted_model(optimizer, first)
    assert fitted_models(optimizer) == [first]
