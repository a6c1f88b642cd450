"""EXP's ``exp.params.ParamSpace`` API, over the typed :class:`~exp_compat.space.model.Space`.

For code written against EXP (``from exp.params import ParamSpace``): the same
methods and results, with our validation and views underneath. Random values
come from numpy's global random state, as in EXP, so ``numpy.random.seed``
makes them reproducible, and each ``param_grid`` call draws afresh unless the
parameter was added with ``persist=True``.
"""

from __future__ import annotations

import csv
import math
import os
from enum import Enum
from typing import Any, Dict, Iterator, List, Optional, Type, TypeVar, Union

import numpy as np

from exp_compat.files.durable import atomic_writer, write_atomic
from exp_compat.space.grid import ArangeAxis, Grid, draw_random, grid_length
from exp_compat.space.model import Space
from exp_compat.space.parameters import ListParam, Param, RandomParam, RangeParam, ValueParam

_P = TypeVar("_P", ValueParam, ListParam, RangeParam, RandomParam)


class Types(Enum):
    """The parameter types of an EXP space."""

    VALUE = "value"
    LIST = "list"
    RANGE = "range"
    RANDOM = "random"


class DTypes(Enum):
    """How EXP describes a parameter's domain for optimization."""

    INT = "int"
    FLOAT = "float"
    CATEGORICAL = "categorical"


def _dtype_name(dtype: Union[type, str]) -> str:
    if dtype in (float, "float"):
        return "float"
    if dtype in (int, "int"):
        return "int"
    raise TypeError(f"unknown dtype {dtype!r}; allowed: float, int")


def _global_rng() -> np.random.Generator:
    """A generator seeded from numpy's global state, so that ``np.random.seed`` governs our draws as it did EXP's."""
    return np.random.default_rng(np.random.randint(0, 2**32 - 1, dtype=np.uint64))


class ParamSpace:
    """EXP's parameter space object: build it in code or load it from a TOML file."""

    def __init__(self, filename: Optional[Union[str, os.PathLike]] = None):
        self.space = Space.from_file(filename) if filename is not None else Space()

    # -- building ---------------------------------------------------------------------------
    def _add(self, param: Param) -> None:
        self.space = self.space.replace(param)

    def add_value(self, name: str, value: Any) -> None:
        self._add(ValueParam(name, value))

    def add_list(self, name: str, values: Any) -> None:
        self._add(ListParam(name, tuple(values)))

    def add_range(self, name: str, low: float = 0, high: float = 1, step: float = 1, dtype: Union[type, str] = float) -> None:
        """Values ``low, low+step, ...`` excluding ``high`` in a grid; ``[low, high]`` in optimization."""
        self._add(RangeParam(name, low, high, step, _dtype_name(dtype)))

    def add_random(
        self,
        name: str,
        low: float = 0.0,
        high: float = 1.0,
        prior: str = "uniform",
        dtype: Union[type, str] = float,
        n: Optional[int] = None,
        persist: bool = False,
    ) -> None:
        """``n`` random values per grid (1 if not given); ``persist`` draws them now and stores them as a list."""
        param = RandomParam(name, low, high, prior, _dtype_name(dtype), 1 if n is None else n)
        self._add(ListParam(name, draw_random(param, _global_rng())) if persist else param)

    # -- reading ------------------------------------------------------------------------------
    @property
    def params(self) -> Dict[str, Dict[str, Any]]:
        """Each parameter's TOML table, by name."""
        return {param.name: param.to_toml() for param in self.space}

    @property
    def size(self) -> int:
        """Number of configurations in the grid (0 for an empty space, as in EXP)."""
        return math.prod(grid_length(p) for p in self.space) if len(self.space) else 0

    def param_names(self) -> List[str]:
        return self.space.names

    def _get(self, name: str, kind: Optional[Union[Types, str]] = None) -> Param:
        if name not in self.space:
            raise KeyError(f"parameter {name!r} not found")
        param = self.space[name]
        expected = Types(kind).value if kind is not None else param.type
        if param.type != expected:
            raise TypeError(f"parameter {name!r} is a {param.type}, not a {expected}")
        return param

    def _get_as(self, name: str, cls: Type[_P]) -> _P:
        """``_get`` for the getter of one type, which then knows the parameter's class."""
        param = self._get(name, cls.type)
        assert isinstance(param, cls)  # _get refused a parameter of any other type
        return param

    def get_value(self, name: str) -> Any:
        return self._get_as(name, ValueParam).value

    def get_list(self, name: str, unique: bool = False) -> List[Any]:
        param = self._get_as(name, ListParam)
        return list(param.unique_values if unique else param.values)

    def get_range(self, name: str) -> np.ndarray:
        """The grid values, equal to ``numpy.arange(low, high, step, dtype)``."""
        param = self._get_as(name, RangeParam)
        axis = ArangeAxis(param)
        return np.array([axis[i] for i in range(len(axis))], dtype=int if param.dtype == "int" else float)

    def get_random(self, name: str) -> np.ndarray:
        """``n`` fresh draws from the parameter's prior within ``[low, high)``."""
        return np.array(draw_random(self._get_as(name, RandomParam), _global_rng()))

    def get_param(self, name: str, type: Optional[Union[Types, str]] = None) -> Any:
        param = self._get(name, type)
        getter = {"value": self.get_value, "list": self.get_list, "range": self.get_range, "random": self.get_random}
        return getter[param.type](name)

    def domain(self, name: str) -> Dict[str, Any]:
        """EXP's description of a parameter for optimization: ``domain``, ``dtype`` and ``prior``."""
        param = self._get(name)
        if isinstance(param, ListParam):
            return {"domain": list(param.unique_values), "dtype": DTypes.CATEGORICAL.value}
        if isinstance(param, ValueParam):
            return {"domain": [param.value], "dtype": DTypes.CATEGORICAL.value}
        prior = param.prior if isinstance(param, RandomParam) else "uniform"
        return {"domain": [param.low, param.high], "dtype": param.dtype, "prior": prior}

    def sample_param(self, name: str) -> Any:
        """One value: the value itself, a uniform pick from a list or range, a draw from a random prior."""
        param = self._get(name)
        if isinstance(param, ValueParam):
            return param.value
        if isinstance(param, RandomParam):
            return draw_random(RandomParam(name, param.low, param.high, param.prior, param.dtype, 1), _global_rng())[0]
        values = param.values if isinstance(param, ListParam) else ArangeAxis(param)
        return values[int(np.random.randint(0, len(values)))]

    def sample_space(self) -> Dict[str, Any]:
        return {name: self.sample_param(name) for name in self.space.names}

    def param_grid(self, runs: int = 1) -> Iterator[Dict[str, Any]]:
        """Every configuration ``runs`` times, each with its ``id`` and ``run`` (random values drawn now)."""
        if len(self.space) == 0:
            return iter(())
        return iter(Grid(self.space, runs=runs, seed=int(np.random.randint(0, 2**31 - 1))))

    # -- writing ------------------------------------------------------------------------------
    def write(self, filename: Union[str, os.PathLike]) -> None:
        """The space as an EXP TOML file."""
        self.space.write(filename)

    def write_configs(self, output_path: Union[str, os.PathLike] = "params.csv") -> None:
        """A CSV with ``id``, ``run`` and every parameter, one row per configuration."""
        with atomic_writer(output_path, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "run", *self.space.names])
            writer.writeheader()
            writer.writerows(self.param_grid())

    def write_config_files(self, output_path: Union[str, os.PathLike] = "params", file_prefix: str = "params") -> None:
        """One TOML file per configuration, ``<prefix>_<id>.conf``."""
        import tomli_w

        for config in self.param_grid():
            path = os.path.join(output_path, f"{file_prefix}_{config['id']}.conf")
            write_atomic(path, tomli_w.dumps(config))
