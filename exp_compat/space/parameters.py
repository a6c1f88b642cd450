"""The parameters of an EXP space and every rule on their names and values.

A :class:`~exp_compat.space.model.Space` is an ordered collection of these; the
views (:mod:`exp_compat.space.grid`, :mod:`exp_compat.space.search`,
:mod:`exp_compat.overrides`) read them through :class:`ParamSet`, so that they
need not import the space that offers them as methods.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
from typing import Any, ClassVar, Dict, Iterable, Iterator, List, Mapping, Optional, Protocol, Tuple, Union, cast

from exp_compat.errors import SpaceError

PARAM_TYPES = ("value", "list", "range", "random")
DTYPES = ("float", "int")
PRIORS = ("uniform", "log-uniform")
RESERVED_NAMES = ("id", "run")
# Top-level keys a parameter may not live under: Hydra's own config, and the sweep's own settings (exp.params).
RESERVED_ROOTS = ("hydra", "exp")
MISSING = "???"  # OmegaConf's marker for a mandatory value that is not set
# Every job's value travels as a Hydra override, which Hydra's grammar parses several times per job at
# about 2 s per million characters: a 10 MB string cost a trivial job about a minute.
LONGEST_STRING = 100_000

# Each dotted part of a name must be an identifier in Hydra's override grammar,
# otherwise no override could address the parameter.
_NAME_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
_KIND_OF = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "table"}


def check_key(name: str) -> None:
    """Reject keys that no Hydra override can address: config paths (``a.b``) and config groups (``db/engine``)."""
    separator = "/" if isinstance(name, str) and "/" in name else "."
    if not isinstance(name, str) or not all(_NAME_PART.match(part) for part in name.split(separator)):
        raise SpaceError(
            "invalid name: use dot-separated identifiers (letters, digits, '_' and '-', "
            "not starting with a digit) so that Hydra overrides can address it",
            param=str(name),
        )


def check_name(name: str) -> None:
    """Reject parameter names that Hydra cannot address or that EXP reserves."""
    check_key(name)
    if name in RESERVED_NAMES:
        raise SpaceError(
            f"the names {' and '.join(RESERVED_NAMES)} are reserved: every configuration "
            "carries its configuration id and run number under them; rename the parameter",
            param=name,
        )
    root = re.split(r"[./]", name, maxsplit=1)[0]
    if root in RESERVED_ROOTS:
        raise SpaceError(
            f"names under {root!r} are not the app's: 'hydra' is Hydra's own config and 'exp' holds the "
            "sweep's own settings (exp.params); rename the parameter",
            param=name,
        )


def value_kind(value: Any) -> str:
    """The TOML kind of a value ('number' covers int and float), used for homogeneity."""
    if value is None:
        return "null"
    return _KIND_OF.get(type(value), type(value).__name__)


def check_value(value: Any, name: str) -> None:
    """Accept only values a Hydra config can hold exactly."""
    if value is None or isinstance(value, (bool, int, float)):
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise SpaceError("strings may not contain the NUL character (\\u0000)", param=name)
        if value == MISSING:
            raise SpaceError(
                f"the string {MISSING!r} means 'missing value' to Hydra and OmegaConf; a job cannot receive it",
                param=name,
            )
        if len(value) > LONGEST_STRING:
            raise SpaceError(
                f"a string of {len(value):,} characters (at most {LONGEST_STRING:,}): each job receives its value "
                "as a Hydra override, which Hydra parses several times per job, slowly for long text; "
                "put the text in a file and pass its path",
                param=name,
            )
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            check_value(item, name)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not _NAME_PART.match(key):
                raise SpaceError(
                    f"inline-table key {key!r} cannot be passed to Hydra: keys must be "
                    "identifiers (letters, digits, '_' and '-', not starting with a digit)",
                    param=name,
                )
            check_value(item, name)
        return
    if isinstance(value, (datetime.date, datetime.time)):
        raise SpaceError(
            f"TOML dates and times are not supported ({value!r}): Hydra configs cannot hold them; write the value as a string",
            param=name,
        )
    raise SpaceError(
        f"unsupported value {value!r} of type {type(value).__name__}: allowed are booleans, numbers, strings, arrays and tables",
        param=name,
    )


def _number(value: Any, name: str, what: str) -> Union[int, float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpaceError(f"{what} must be a finite number, got {value!r}", param=name)
    return value


def _integral(value: Union[int, float], name: str, what: str) -> int:
    if float(value) != int(value):
        raise SpaceError(f'{what} must be a whole number for dtype "int", got {value!r}', param=name)
    return int(value)


def _choice(value: Any, allowed: Tuple[str, ...], name: str, what: str) -> str:
    if value not in allowed:
        raise SpaceError(f"unknown {what} {value!r}; allowed: {', '.join(repr(a) for a in allowed)}", param=name)
    return value


def _bounds(low: Any, high: Any, name: str, dtype: str) -> Tuple[Union[int, float], Union[int, float]]:
    low = _number(low, name, "the low bound")
    high = _number(high, name, "the high bound")
    if low >= high:
        raise SpaceError(f"bounds must have low < high, got [{low!r}, {high!r}]", param=name)
    if dtype == "int":
        return _integral(low, name, "the low bound"), _integral(high, name, "the high bound")
    return low, high


def plain(value: Any) -> Any:
    """numpy scalars (what skopt's ``ask`` returns) and 0-d arrays or tensors (what an app may return) as
    the Python values that configs, overrides and JSON accept; anything else as it is.

    The one numpy-to-Python conversion of the package: the optimizer, the override renderer and the
    job records all call it, so a value reads the same wherever it travels.
    """
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        try:
            return value.item()
        except Exception:  # several elements (numpy: ValueError, torch: RuntimeError) or another .item(): not a scalar
            return value
    return value


def canonical(value: Any) -> Any:
    """A hashable key equal only for values of the same TOML type and content.

    Python says ``1 == 1.0 == True``; a job must not receive ``True`` where the
    file said ``1``, so de-duplication compares types too.
    """
    if isinstance(value, (list, tuple)):
        return ("array", tuple(canonical(v) for v in value))
    if isinstance(value, dict):
        return ("table", tuple((k, canonical(v)) for k, v in value.items()))
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


@dataclasses.dataclass(frozen=True)
class ValueParam:
    """A single fixed value (TOML ``type = "value"``)."""

    name: str
    value: Any
    type: ClassVar[str] = "value"

    def __post_init__(self) -> None:
        check_name(self.name)
        check_value(self.value, self.name)

    def to_toml(self) -> Dict[str, Any]:
        return {"type": self.type, "value": self.value}


@dataclasses.dataclass(frozen=True)
class ListParam:
    """A list of alternatives (TOML ``type = "list"``); categorical in optimization."""

    name: str
    values: Tuple[Any, ...]
    type: ClassVar[str] = "list"

    def __post_init__(self) -> None:
        check_name(self.name)
        if isinstance(self.values, (str, bytes)) or not isinstance(self.values, Iterable):
            raise SpaceError(f"'value' of a list must be an array, got {self.values!r}", param=self.name)
        values = tuple(self.values)
        object.__setattr__(self, "values", values)
        if not values:
            raise SpaceError("'value' of a list must not be empty", param=self.name)
        for item in values:
            check_value(item, self.name)
        kinds = sorted({value_kind(v) for v in values})
        if len(kinds) > 1:
            raise SpaceError(
                f"list values must all be of one kind, got a mix of {' and '.join(kinds)}: {list(values)!r}",
                param=self.name,
            )

    @property
    def unique_values(self) -> Tuple[Any, ...]:
        """The distinct values in first-seen order (what optimization chooses from)."""
        seen: Dict[Any, Any] = {}
        for item in self.values:
            seen.setdefault(canonical(item), item)
        return tuple(seen.values())

    def to_toml(self) -> Dict[str, Any]:
        return {"type": self.type, "value": list(self.values)}


@dataclasses.dataclass(frozen=True)
class RangeParam:
    """An evenly spaced range (TOML ``type = "range"``).

    The grid excludes ``high`` (like ``numpy.arange``); optimization treats
    ``[low, high]`` as a bounded dimension including both ends.
    """

    name: str
    low: Union[int, float]
    high: Union[int, float]
    step: Union[int, float] = 1
    dtype: str = "float"
    type: ClassVar[str] = "range"

    def __post_init__(self) -> None:
        check_name(self.name)
        _choice(self.dtype, DTYPES, self.name, "dtype")
        low, high = _bounds(self.low, self.high, self.name, self.dtype)
        step = _number(self.step, self.name, "step")
        if step <= 0:
            raise SpaceError(f"step must be > 0, got {step!r}", param=self.name)
        if self.dtype == "int":
            step = _integral(step, self.name, "step")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "step", step)
        if self.grid_size < 1:  # only reachable through float rounding, but then nothing would run
            raise SpaceError(f"step {step!r} gives an empty grid for bounds [{low!r}, {high!r}]", param=self.name)

    @property
    def grid_size(self) -> int:
        """How many values ``numpy.arange(low, high, step)`` gives, without building them."""
        if self.dtype == "int":  # __post_init__ made low, high and step ints, so this is an int
            return cast(int, max(0, -(-(self.high - self.low) // self.step)))
        return max(0, math.ceil((float(self.high) - float(self.low)) / float(self.step)))

    def to_toml(self) -> Dict[str, Any]:
        return {"type": self.type, "bounds": [self.low, self.high], "step": self.step, "dtype": self.dtype}


@dataclasses.dataclass(frozen=True)
class RandomParam:
    """Values drawn from a prior (TOML ``type = "random"``).

    The grid draws ``n`` values within ``[low, high)``; optimization treats the
    bounds as a dimension including both ends, with the same prior.
    """

    name: str
    low: Union[int, float] = 0.0
    high: Union[int, float] = 1.0
    prior: str = "uniform"
    dtype: str = "float"
    n: int = 1
    type: ClassVar[str] = "random"

    def __post_init__(self) -> None:
        check_name(self.name)
        _choice(self.dtype, DTYPES, self.name, "dtype")
        _choice(self.prior, PRIORS, self.name, "prior")
        low, high = _bounds(self.low, self.high, self.name, self.dtype)
        if self.prior == "log-uniform" and low <= 0:
            raise SpaceError(f"a log-uniform prior needs bounds > 0, got [{low!r}, {high!r}]", param=self.name)
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise SpaceError(f"n must be a whole number >= 1, got {self.n!r}", param=self.name)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def to_toml(self) -> Dict[str, Any]:
        return {
            "type": self.type,
            "bounds": [self.low, self.high],
            "prior": self.prior,
            "dtype": self.dtype,
            "n": self.n,
        }


Param = Union[ValueParam, ListParam, RangeParam, RandomParam]

# Keys each TOML parameter table may hold, beside "type".
_TABLE_KEYS = {
    "value": ("value",),
    "list": ("value",),
    "range": ("bounds", "step", "dtype"),
    "random": ("bounds", "prior", "dtype", "n"),
}


def _table_bounds(table: Mapping[str, Any], name: str, default: Optional[List[float]]) -> List[Any]:
    bounds = table.get("bounds", default)
    if bounds is None:
        raise SpaceError("missing 'bounds = [low, high]'", param=name)
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise SpaceError(f"'bounds' must be an array of two numbers [low, high], got {bounds!r}", param=name)
    return bounds


def param_from_table(name: str, table: Mapping[str, Any]) -> Param:
    """Build one parameter from its TOML table, checking every key."""
    kind = table.get("type")
    if not isinstance(kind, str) or kind not in PARAM_TYPES:
        raise SpaceError(f"unknown type {kind!r}; allowed: {', '.join(PARAM_TYPES)}", param=name)
    allowed = _TABLE_KEYS[kind]
    for key in table:
        if key != "type" and key not in allowed:
            raise SpaceError(f"unknown key {key!r} for a {kind} parameter; allowed: type, {', '.join(allowed)}", param=name)
    if kind in ("value", "list") and "value" not in table:
        raise SpaceError(f"missing 'value' for a {kind} parameter", param=name)
    if kind == "value":
        return ValueParam(name, table["value"])
    if kind == "list":
        if not isinstance(table["value"], list):
            raise SpaceError(f"'value' of a list must be an array, got {table['value']!r}", param=name)
        return ListParam(name, tuple(table["value"]))
    if kind == "range":
        low, high = _table_bounds(table, name, None)
        return RangeParam(name, low, high, table.get("step", 1), table.get("dtype", "float"))
    low, high = _table_bounds(table, name, [0.0, 1.0])
    return RandomParam(name, low, high, table.get("prior", "uniform"), table.get("dtype", "float"), table.get("n", 1))


class ParamSet(Protocol):
    """What a view reads of a space: its parameters in file order, their names, the file they came from."""

    source: Optional[str]

    @property
    def names(self) -> List[str]: ...

    def __iter__(self) -> Iterator[Param]: ...
