"""The exp_grid Hydra sweeper (thin: the work is in _grid.py, imported when a sweep starts)."""

from hydra_plugins.exp_sweeper._lazy import LazySweeper


class ExpGridSweeper(LazySweeper):
    """Runs every configuration of an EXP grid: ``python app.py -m hydra/sweeper=exp_grid +exp.params=grid.conf``."""

    implementation = "hydra_plugins.exp_sweeper._grid:GridSweep"
