from exp_compat.early_stopping.reporting import Pruned, report
from exp_compat.errors import SpaceError
from exp_compat.space.model import Space
from exp_compat.space.parameters import ListParam, RandomParam, RangeParam, ValueParam

__all__ = ["Space", "SpaceError", "ValueParam", "ListParam", "RangeParam", "RandomParam", "runnable", "report", "Pruned"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """``runnable`` imports Hydra, so it is loaded on first use (the CLI and the space model need no Hydra)."""
    if name == "runnable":
        from exp_compat.apps import runnable

        return runnable
    raise AttributeError(f"module 'exp_compat' has no attribute {name!r}")
