"""The grid view: EXP runner rules over a :class:`~exp_compat.space.model.Space`.

Rules (EXP's ``exp.run``): a range excludes its high end exactly like
``numpy.arange(low, high, step)``; a random parameter becomes ``n`` values drawn
from its prior within ``[low, high)``; a list gives its values (duplicates
included); a value gives one. The grid is the Cartesian product in file
order, the last parameter varying fastest, and ``runs`` repeats each
configuration with ``run = 1..runs``.

The grid is lazy: its size is known without building it, any job can be
computed from its index, and iterating holds one configuration at a time, so a
10^6-configuration space costs no memory beyond its axes.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from exp_compat.errors import SpaceError
from exp_compat.space.parameters import ListParam, Param, ParamSet, RandomParam, RangeParam, ValueParam

Number = Union[int, float]


class ArangeAxis:
    """The values of ``numpy.arange(low, high, step)``, computed on demand.

    For floats, numpy stores ``low`` and ``low + step`` and fills the rest as
    ``low + i * delta`` with ``delta = (low + step) - low``; doing the same
    arithmetic here gives bit-identical values without an array.
    """

    def __init__(self, param: RangeParam):
        self.is_int = param.dtype == "int"
        self.low: Number = param.low if self.is_int else float(param.low)
        self.step: Number = param.step if self.is_int else float(param.step)
        self.delta: Number = self.step if self.is_int else (self.low + self.step) - self.low
        self.size = param.grid_size

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[Number]:
        return (self[i] for i in range(self.size))

    def __getitem__(self, index: int) -> Number:
        if not 0 <= index < self.size:
            raise IndexError(index)
        if self.is_int or index > 1:
            return self.low + index * self.delta
        return self.low if index == 0 else self.low + self.step


def draw_random(param: RandomParam, rng: Any) -> Tuple[Number, ...]:
    """``param.n`` values from the prior within ``[low, high)``, as plain Python numbers."""
    if param.prior == "log-uniform":
        if param.dtype == "int":
            raise SpaceError(
                'a random parameter with dtype "int" and prior "log-uniform" cannot be drawn for a '
                'grid (EXP\'s runner only draws integers uniformly); use dtype "float", or use it for '
                "optimization where it is an integer dimension with a log prior",
                param=param.name,
            )
        exponents = rng.uniform(math.log10(param.low), math.log10(param.high), size=param.n)
        return tuple(float(10.0**e) for e in exponents)
    if param.dtype == "int":
        return tuple(int(v) for v in rng.integers(param.low, param.high, size=param.n))
    return tuple(float(v) for v in rng.uniform(param.low, param.high, size=param.n))


def axis_of(param: Param, rng: Any) -> Union[Sequence[Any], ArangeAxis]:
    """The grid values of one parameter, in order."""
    if isinstance(param, ValueParam):
        return (param.value,)
    if isinstance(param, ListParam):
        return param.values
    if isinstance(param, RangeParam):
        return ArangeAxis(param)
    return draw_random(param, rng)


def grid_length(param: Param) -> int:
    """How many grid values a parameter contributes, without drawing or building them."""
    if isinstance(param, ValueParam):
        return 1
    if isinstance(param, ListParam):
        return len(param.values)
    if isinstance(param, RangeParam):
        return param.grid_size
    return param.n


def _fresh(value: Any) -> Any:
    """Containers are copied so that one job mutating its config cannot change another's."""
    return copy.deepcopy(value) if isinstance(value, (list, dict)) else value


class Grid:
    """All configurations of a space under EXP runner rules, computed lazily.

    Job ``i`` is configuration ``i // runs``, run ``i % runs + 1``; each row
    is a dict of the parameters (dotted names) plus ``id_key`` and ``run_key``.
    Random parameters are drawn once, when the grid is made, from ``seed``.
    """

    def __init__(
        self,
        space: ParamSet,
        runs: int = 1,
        seed: Optional[int] = None,
        id_key: str = "id",
        run_key: str = "run",
    ):
        if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
            raise SpaceError(f"runs must be a whole number >= 1, got {runs!r}", source=space.source)
        import numpy as np

        rng = np.random.default_rng(seed)
        try:
            self.axes: List[Union[Sequence[Any], ArangeAxis]] = [axis_of(param, rng) for param in space]
        except SpaceError as error:
            raise error.located(space.source) from None
        self.names = space.names
        self.runs = runs
        self.id_key = id_key
        self.run_key = run_key
        self.size = math.prod(len(axis) for axis in self.axes) if self.axes else 0

    @property
    def jobs(self) -> int:
        """Number of jobs: configurations times runs (``len`` fails past ``sys.maxsize``, which a lazy grid may pass)."""
        return self.size * self.runs

    def __len__(self) -> int:
        return self.jobs

    def config(self, config_id: int) -> Dict[str, Any]:
        """The parameters of configuration ``config_id`` (no id/run keys)."""
        if not 0 <= config_id < self.size:
            raise IndexError(f"configuration id {config_id} outside 0..{self.size - 1}")
        values: List[Any] = []
        rest = config_id
        for axis in reversed(self.axes):
            rest, position = divmod(rest, len(axis))
            values.append(axis[position])
        return {name: _fresh(v) for name, v in zip(self.names, reversed(values))}

    def row(self, config: Dict[str, Any], config_id: int, run: int) -> Dict[str, Any]:
        """One job's row: its own copy of the parameters plus the id and run keys."""
        return {**{k: _fresh(v) for k, v in config.items()}, self.id_key: config_id, self.run_key: run}

    def __getitem__(self, index: int) -> Dict[str, Any]:
        if not 0 <= index < self.jobs:
            raise IndexError(f"job {index} outside 0..{self.jobs - 1}")
        config_id, run_index = divmod(index, self.runs)
        return self.row(self.config(config_id), config_id, run_index + 1)

    def configs(self) -> Iterator[Tuple[int, Dict[str, Any]]]:
        """(id, parameters) for every configuration, one at a time (an odometer over the axes)."""
        if not self.size:
            return
        positions = [0] * len(self.axes)
        current = [axis[0] for axis in self.axes]
        for config_id in range(self.size):
            if config_id:
                slot = len(self.axes) - 1
                while True:
                    positions[slot] += 1
                    if positions[slot] < len(self.axes[slot]):
                        current[slot] = self.axes[slot][positions[slot]]
                        break
                    positions[slot] = 0
                    current[slot] = self.axes[slot][0]
                    slot -= 1
            yield config_id, {name: _fresh(v) for name, v in zip(self.names, current)}

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        for config_id, config in self.configs():
            for run in range(1, self.runs + 1):
                yield self.row(config, config_id, run)

    def select(self, config_ids: Iterable[int]) -> Iterator[Dict[str, Any]]:
        """Only the given configurations (EXP's ``-c``), each with all its runs."""
        for config_id in config_ids:
            config = self.config(config_id)
            for run in range(1, self.runs + 1):
                yield self.row(config, config_id, run)
