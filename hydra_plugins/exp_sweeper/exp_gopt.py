"""The exp_gopt Hydra sweeper (thin: the work is in _gopt.py, imported when a sweep starts)."""
from typing import Any, List

from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig


class ExpGoptSweeper(Sweeper):
    """Optimizes an EXP space with scikit-optimize: ``python app.py -m hydra/sweeper=exp_gopt +exp.params=space.conf``."""

    def __init__(self, **options: Any):
        self.options = options

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        from hydra_plugins.exp_sweeper._gopt import GoptSweep

        self.impl = GoptSweep(self.options)
        self.impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        return self.impl.sweep(arguments)
