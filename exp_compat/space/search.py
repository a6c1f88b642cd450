"""The optimization view: EXP gopt rules as scikit-optimize dimensions.

Rules (EXP's ``exp.gopt``): ``range`` and ``random`` are bounded dimensions
that include both end points; ``dtype = "int"`` gives an ``Integer``, float a
``Real``; a ``random`` parameter's prior applies; a ``list`` is categorical over
its unique values; a parameter with one possible value is fixed, not
optimized. scikit-optimize is imported only when this view is built.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Sequence

from exp_compat.errors import SpaceError
from exp_compat.space.parameters import ListParam, ParamSet, RandomParam, RangeParam, ValueParam, canonical, plain, value_kind

_SCALAR_KINDS = ("boolean", "number", "string")


@dataclasses.dataclass
class SearchSpace:
    """scikit-optimize dimensions (named) plus the parameters that are fixed."""

    dimensions: List[Any]
    fixed: Dict[str, Any]
    order: List[str]

    @property
    def names(self) -> List[str]:
        return [dimension.name for dimension in self.dimensions]

    def to_config(self, point: Sequence[Any]) -> Dict[str, Any]:
        """A point from ``Optimizer.ask`` as a configuration: plain Python values, in file order."""
        if len(point) != len(self.dimensions):
            raise ValueError(f"expected {len(self.dimensions)} values, got {len(point)}")
        values = dict(self.fixed)
        for dimension, raw in zip(self.dimensions, point):
            values[dimension.name] = _decode(dimension, plain(raw))
        return {name: values[name] for name in self.order}

    def to_point(self, config: Dict[str, Any]) -> List[Any]:
        """The inverse of :meth:`to_config`, to tell the optimizer about known results."""
        return [config[name] for name in self.names]


def _decode(dimension: Any, value: Any) -> Any:
    from skopt.space import Categorical, Integer

    if isinstance(dimension, Integer):
        return int(value)
    if not isinstance(dimension, Categorical):
        return float(value)
    # The category as written in the file: skopt may hand back 1.0 for 1 in a mixed list.
    exact = canonical(value)
    for category in dimension.categories:
        if canonical(category) == exact:
            return category
    for category in dimension.categories:
        if category == value and type(category) is not bool and type(value) is not bool:
            return category
    raise ValueError(f"{value!r} is not a category of {dimension.name}")


def search_space(space: ParamSet) -> SearchSpace:
    """Build the skopt view of ``space``; a space with nothing to optimize is still valid (all fixed)."""
    from skopt.space import Categorical, Integer, Real

    dimensions: List[Any] = []
    fixed: Dict[str, Any] = {}
    for param in space:
        if isinstance(param, ValueParam):
            fixed[param.name] = param.value
        elif isinstance(param, ListParam):
            choices = param.unique_values
            if len(choices) == 1:
                fixed[param.name] = choices[0]
                continue
            if value_kind(choices[0]) not in _SCALAR_KINDS:
                raise SpaceError(
                    "optimization can choose only between booleans, numbers or strings, "
                    f"not {value_kind(choices[0])}s; use it in a grid, or list names and map them in the app",
                    param=param.name,
                    source=space.source,
                )
            dimensions.append(Categorical(list(choices), name=param.name))
        else:
            assert isinstance(param, (RangeParam, RandomParam))
            prior = getattr(param, "prior", "uniform")
            if param.dtype == "int":
                dimensions.append(Integer(int(param.low), int(param.high), prior=prior, name=param.name))
            else:
                dimensions.append(Real(float(param.low), float(param.high), prior=prior, name=param.name))
    return SearchSpace(dimensions, fixed, space.names)
