"""scikit-optimize's private code, and what repairs it: the one module that depends on either.

Mirrors scikit-optimize 0.10.2, the last release (the project is archived, so nothing here will be
fixed upstream), as it runs on scikit-learn 1.9 and numpy 2.4; ``setup.py`` bounds all three. What
is private and may move:

* ``skopt.acquisition._gaussian_acquisition`` (the acquisition over many points) and
  ``gaussian_acquisition_1D`` (one point with its gradient, for L-BFGS), both undocumented;
* ``Optimizer._next_x``, the optimizer's own next point, computed when results are told;
* ``Optimizer.base_estimator_``, which ``Optimizer.tell`` clones and fits (read, and replaced to choose
  how a GP's hyper-parameters are searched);
* ``Optimizer.yi`` and ``Optimizer.models``, the told values and the fitted models: documented to read,
  but only ``tell`` keeps them consistent, and they are written here behind it (values told again under
  another scalarisation; the model of a fit made outside ``tell``, for the plots);
* ``skopt.learning.gaussian_process.gpr._param_for_white_kernel_in_Sum`` and the attributes skopt's
  ``GaussianProcessRegressor.fit`` sets (``noise_``, ``K_inv_``, ``y_train_std_``, ``y_train_mean_``,
  the last two copied from scikit-learn's private ``_y_train_std``/``_y_train_mean``);
* how skopt's ``RandomForestRegressor``/``ExtraTreesRegressor`` compute their standard deviation
  (``skopt.learning.forest._return_std``), which :class:`ForestLeaves` reproduces from leaf statistics;
* the GBRT surrogate, which scikit-optimize 0.10.2 cannot build on scikit-learn >= 1.6 or numpy >= 2.4
  (:class:`QuantileGBRT` repairs it).

CI runs tests/test_proposer.py and a real exp_gopt sweep against the newest scikit-learn and numpy
(.ci/run, ``-m upstream``), so a release that moves any of this is caught there.
"""

from __future__ import annotations

import copy
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from sklearn.base import clone
from skopt import Optimizer
from skopt.acquisition import _gaussian_acquisition, gaussian_acquisition_1D
from skopt.learning import GaussianProcessRegressor
from skopt.learning.gbrt import GradientBoostingQuantileRegressor

MIRRORED = "scikit-optimize 0.10.2"


def acquisition(X: Any, model: Any, y_opt: float, acq_func: str, acq_func_kwargs: Any) -> Any:
    """The acquisition function's values at the (transformed) points ``X``, lower is better."""
    return _gaussian_acquisition(X, model, y_opt=y_opt, acq_func=acq_func, acq_func_kwargs=acq_func_kwargs)


def acquisition_1d(x: Any, model: Any, y_opt: float, acq_func: str, acq_func_kwargs: Any) -> Any:
    """The acquisition at one transformed point and its gradient, as ``fmin_l_bfgs_b`` wants them."""
    return gaussian_acquisition_1D(x, model, y_opt, acq_func, acq_func_kwargs)


def own_next_point(optimizer: Optimizer) -> Sequence[Any]:
    """The point scikit-optimize itself would propose next (computed when results were told with a fit)."""
    return optimizer._next_x


class QuantileGBRT(GradientBoostingQuantileRegressor):
    """skopt's GBRT surrogate, repaired: scikit-learn >= 1.6 reads the estimator type from tags that
    its base-class order never sets, and numpy >= 2.4 removed the ``np.in1d`` its predict used."""

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import RegressorTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        tags.regressor_tags = RegressorTags()
        return tags

    def predict(self, X: Any, return_std: bool = False, return_quantiles: bool = False) -> Any:
        if not return_std or return_quantiles:
            return super().predict(X, return_std=False, return_quantiles=return_quantiles)
        if not all(q in self.quantiles for q in (0.16, 0.5, 0.84)):
            raise ValueError("return_std needs the quantiles 0.16, 0.5 and 0.84")
        low, mean, high = (self.regressors_[self.quantiles.index(q)].predict(X) for q in (0.16, 0.5, 0.84))
        return mean, (high - low) / 2.0


def base_estimator(optimizer: Optimizer) -> Any:
    """The (unfitted) estimator that ``optimizer.tell`` clones and fits."""
    return optimizer.base_estimator_


def set_estimator(optimizer: Optimizer, estimator: Any) -> None:
    """Make ``optimizer.tell`` fit (a clone of) ``estimator`` from now on."""
    optimizer.base_estimator_ = estimator


def set_told_values(optimizer: Optimizer, values: Sequence[float]) -> None:
    """Replace the values told so far (in the order told) by ``values``: the next fit learns them."""
    optimizer.yi = list(values)


def fitted_models(optimizer: Optimizer) -> List[Any]:
    """The models of the optimizer's latest fits, the latest last (none before its first fit)."""
    return list(optimizer.models)


def set_fitted_model(optimizer: Optimizer, model: Any) -> None:
    """Make ``model``, fitted outside ``optimizer.tell``, the optimizer's latest (what its plots draw)."""
    optimizer.models = [model]


def fitted_kernel(gp: GaussianProcessRegressor, fixed_noise: bool = True) -> Any:
    """The GP's fitted kernel with its fitted noise put back: fixed, to refit with the kernel kept, or
    free (``fixed_noise=False``), as the starting point of a new hyper-parameter search.

    After fitting, skopt zeroes the white-noise term of ``kernel_`` (to predict the noise-free
    function); refitting with that kernel would interpolate the data exactly through a nearly
    singular matrix (long length scales, large amplitude), so the fitted noise level is restored.
    """
    from skopt.learning.gaussian_process.gpr import _param_for_white_kernel_in_Sum
    from skopt.learning.gaussian_process.kernels import WhiteKernel

    kernel = clone(gp.kernel_)
    present, name = _param_for_white_kernel_in_Sum(kernel)
    if present and gp.noise_ is not None:
        noise = WhiteKernel(noise_level=gp.noise_, noise_level_bounds="fixed") if fixed_noise else WhiteKernel(noise_level=gp.noise_)
        kernel.set_params(**{name: noise})
    return kernel


class FastGP:
    """A fitted skopt GP's predictive mean and standard deviation, as its ``predict`` computes them,
    with the variance's ``einsum("ki,kj,ij->k")`` done as two matrix products (much faster on
    thousands of candidates; the same numbers up to rounding) and, for the candidates of ``rows``
    (a ``_proposer.KernelRows``, if given), the kernel matrix that ``rows`` keeps."""

    def __init__(self, gp: GaussianProcessRegressor, rows: Any = None):
        self.gp = gp
        self.rows = rows

    def predict(self, X: Any, return_std: bool = False) -> Any:
        gp = self.gp
        if self.rows is not None and X is self.rows.candidates:
            K_trans = self.rows(gp.kernel_, gp.X_train_)
        else:
            K_trans = gp.kernel_(X, gp.X_train_)
        mean = gp.y_train_std_ * K_trans.dot(gp.alpha_) + gp.y_train_mean_
        if not return_std:
            return mean
        variance = gp.kernel_.diag(X) - np.einsum("ij,ij->i", K_trans @ gp.K_inv_, K_trans)
        return mean, np.sqrt(np.clip(variance, 0.0, None) * gp.y_train_std_**2)


class ForestLeaves:
    """A fitted forest (skopt's ``RF`` or ``ET``) with its trees kept and their leaves' statistics
    updated by more points, predicting at a fixed set of candidates as skopt's
    ``predict(return_std=True)`` does (``skopt.learning.forest._return_std``: the law of total variance
    over the trees, each leaf's variance floored at ``min_variance``).

    The forest's analogue of a GP refitted with its kernel kept: a point added to the leaf it falls in,
    in every tree, moves that leaf's mean and variance as if it had been in the leaf's training data,
    with no split changed; a refit of 100 trees costs tens of milliseconds, this a few. Reads scikit-learn's
    public tree arrays (``tree_.value``, ``impurity``, ``weighted_n_node_samples``, ``apply``).
    """

    def __init__(self, forest: Any, candidates: Any):
        self.trees = forest.estimators_
        self.min_variance = float(getattr(forest, "min_variance", 0.0))
        sizes = [tree.tree_.node_count for tree in self.trees]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        self.value = np.concatenate([tree.tree_.value[:, 0, 0] for tree in self.trees])
        self.variance = np.concatenate([tree.tree_.impurity for tree in self.trees])
        self.weight = np.concatenate([tree.tree_.weighted_n_node_samples for tree in self.trees]).astype(float)
        self.candidates = candidates
        self.candidate_leaves = self.leaves(candidates)
        self.forest = forest
        self._samples: Optional[List[Any]] = None

    def leaves(self, X: Any) -> Any:
        """Each point's leaf in each tree, as indices into the concatenated node arrays (points x trees)."""
        X = np.asarray(X, dtype=np.float32)
        return np.stack([tree.tree_.apply(X) for tree in self.trees], axis=1) + self.offsets

    def in_bag(self, rows: Sequence[int]) -> Any:
        """How many times each training row in ``rows`` is in each tree's sample (rows x trees): a forest
        fitted on bootstrap samples (RF) has a row in about two trees of three, in some twice; without
        bootstrap (ET) every row is in every tree once. Reads scikit-learn's public ``estimators_samples_``."""
        if self._samples is None:  # drawn again from the trees' seeds at every access: once per fit
            self._samples = self.forest.estimators_samples_
        at = np.asarray(rows, dtype=np.intp)
        size = int(at.max(initial=-1)) + 1
        return np.stack([np.bincount(s, minlength=size)[at] for s in self._samples], axis=1).astype(float)

    def with_points(self, X: Any, y: Sequence[float], remove: bool = False, counts: Any = None) -> "ForestLeaves":
        """A copy whose leaves also hold the points ``X`` with the values ``y`` (or no longer: ``remove``,
        for points the forest was fitted with; a leaf is never emptied), each as many times in each tree as
        ``counts`` says (points x trees, as :meth:`in_bag` gives; default: once in every tree)."""
        grown = copy.copy(self)
        grown.value, grown.variance, grown.weight = self.value.copy(), self.variance.copy(), self.weight.copy()
        if counts is None:
            counts = np.ones((len(y), len(self.trees)))
        sign = -1.0 if remove else 1.0
        for leaves, target, count in zip(self.leaves(X), y, counts):
            step = sign * np.asarray(count, dtype=float)
            kept = (step != 0) & (grown.weight[leaves] + step > 0)
            leaves, step = leaves[kept], step[kept]
            weight = grown.weight[leaves] + step
            mean = grown.value[leaves]
            moved = mean + step * (target - mean) / weight
            grown.variance[leaves] = (
                np.maximum((weight - step) * grown.variance[leaves] + step * (target - mean) * (target - moved), 0.0) / weight
            )
            grown.value[leaves], grown.weight[leaves] = moved, weight
        return grown

    def predict_at(self, leaves: Any) -> Tuple[Any, Any]:
        """Mean and standard deviation at points given by their leaves (``leaves(X)``)."""
        values = self.value[leaves]
        mean = values.mean(axis=1)
        second = (np.maximum(self.variance[leaves], self.min_variance) + values**2).mean(axis=1)
        return mean, np.sqrt(np.clip(second - mean**2, 0.0, None))
