"""scikit-optimize's private code, and what repairs it: the one module that depends on either.

Mirrors scikit-optimize 0.10.2, the last release (the project is archived, so nothing here will be
fixed upstream), as it runs on scikit-learn 1.9 and numpy 2.4; ``setup.py`` bounds all three. What
is private and may move:

* ``skopt.acquisition._gaussian_acquisition`` (the acquisition over many points) and
  ``gaussian_acquisition_1D`` (one point with its gradient, for L-BFGS), both undocumented;
* ``Optimizer._next_x``, the optimizer's own next point, computed when results are told;
* ``Optimizer.base_estimator_``, which ``Optimizer.tell`` clones and fits (replaced to choose how a GP's
  hyper-parameters are searched);
* ``skopt.learning.gaussian_process.gpr._param_for_white_kernel_in_Sum`` and the attributes skopt's
  ``GaussianProcessRegressor.fit`` sets (``noise_``, ``K_inv_``, ``y_train_std_``, ``y_train_mean_``,
  the last two copied from scikit-learn's private ``_y_train_std``/``_y_train_mean``);
* the GBRT surrogate, which scikit-optimize 0.10.2 cannot build on scikit-learn >= 1.6 or numpy >= 2.4
  (:class:`QuantileGBRT` repairs it).

CI runs tests/test_proposer.py and a real exp_gopt sweep against the newest scikit-learn and numpy
(.ci/run, ``-m upstream``), so a release that moves any of this is caught there.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

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


def set_estimator(optimizer: Optimizer, estimator: Any) -> None:
    """Make ``optimizer.tell`` fit (a clone of) ``estimator`` from now on."""
    optimizer.base_estimator_ = estimator


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
    (a ``_proposer.KernelRows``), the kernel matrix that ``rows`` keeps."""

    def __init__(self, gp: GaussianProcessRegressor, rows: Optional[Any] = None):
        self.gp = gp
        self.rows = rows

    @classmethod
    def of(cls, model: Any, rows: Optional[Any] = None) -> Any:
        """The fast predictor for a GP; any other surrogate as it is."""
        return cls(model, rows) if isinstance(model, GaussianProcessRegressor) else model

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
