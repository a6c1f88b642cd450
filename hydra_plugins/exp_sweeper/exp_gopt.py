"""The exp_gopt Hydra sweeper (thin: the work is in _gopt.py, imported when a sweep starts)."""

from hydra_plugins.exp_sweeper._lazy import LazySweeper


class ExpGoptSweeper(LazySweeper):
    """Optimizes an EXP space with scikit-optimize: ``python app.py -m hydra/sweeper=exp_gopt +exp.params=space.conf``."""

    implementation = "hydra_plugins.exp_sweeper._gopt:GoptSweep"
