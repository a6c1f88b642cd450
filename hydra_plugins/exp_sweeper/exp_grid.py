"""The exp_grid Hydra sweeper (thin: the work is in _grid.py, imported when a sweep starts)."""
from typing import Any, List

from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig


class ExpGridSweeper(Sweeper):
    """Runs every configuration of an EXP grid: ``python app.py -m hydra/sweeper=exp_grid +exp.params=grid.conf``."""

    def __init__(self, **options: Any):
        self.options = options

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        from hydra_plugins.exp_sweeper._grid import GridSweep

        self.impl = GridSweep(self.options)
        self.impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        return self.impl.sweep(arguments)
