from exp_compat.errors import SpaceError
from exp_compat.space import ListParam, RandomParam, RangeParam, Space, ValueParam

__all__ = ["Space", "SpaceError", "ValueParam", "ListParam", "RangeParam", "RandomParam"]
__version__ = "0.1.0"
