"""Hydra's sweep syntax as parameters of the one space model.

``x=choice(a,b)`` / ``x=a,b`` become a list, ``x=range(0,10)`` a range
(end-exclusive, like Hydra's), ``x=interval(0,1)`` a bounded random
dimension and ``tag(log, interval(...))`` the same with a log prior, so a sweep
written in Hydra's syntax is the same kind of object as one read from an EXP
TOML file. Overrides that are not sweeps pass through unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from exp_compat.errors import SpaceError
from exp_compat.space.parameters import ListParam, Param, RandomParam, RangeParam


@dataclasses.dataclass
class ParsedOverrides:
    """Sweep overrides turned into parameters; every other override is kept as the user typed it.

    ``keys`` keeps each parameter's key as typed (``bar``, ``+bar``, ``group1``), so jobs get
    overrides of the same form the user wrote, config groups included.
    """

    params: List[Param]
    keys: Dict[str, str]
    # Every override in the order given: ("param", name) or ("raw", override as typed).
    order: List[Tuple[str, str]]


def _plain(value: Any) -> Any:
    """Hydra's parsed element (QuotedString, nested containers) as the plain value the job receives."""
    from hydra.core.override_parser.types import QuotedString

    if isinstance(value, QuotedString):
        return value.text
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _param(name: str, override: Any, source: str, enumerable: bool, exact_ranges: bool = False) -> Param:
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    sweep = override.value()
    if isinstance(sweep, ChoiceSweep):
        if sweep.tags or sweep.shuffle:
            raise SpaceError("tags and shuffle are not supported on choice sweeps", param=name, source=source)
        return ListParam(name, tuple(_plain(v) for v in sweep.list))
    if isinstance(sweep, RangeSweep):
        if sweep.shuffle:
            raise SpaceError("shuffle(range(...)) is not supported", param=name, source=source)
        assert sweep.start is not None and sweep.stop is not None  # Hydra's range() always sets both
        numbers = (sweep.start, sweep.stop, sweep.step)
        dtype = "int" if all(isinstance(v, int) for v in numbers) else "float"
        grid = RangeParam(name, sweep.start, sweep.stop, sweep.step, dtype)
        if enumerable or exact_ranges:
            return grid
        # For optimization keep Hydra's meaning (the stop value excluded): an integer
        # dimension when the step is 1, else a choice between the range's values.
        if dtype == "int" and sweep.step == 1 and sweep.stop - sweep.start >= 2:
            return RangeParam(name, sweep.start, sweep.stop - 1, 1, "int")
        from exp_compat.space.grid import ArangeAxis

        axis = ArangeAxis(grid)
        return ListParam(name, tuple(axis[i] for i in range(len(axis))))
    if isinstance(sweep, IntervalSweep):
        if enumerable:
            raise SpaceError(
                f"{override.input_line!r}: an interval has no grid; use choice(...) or range(...), "
                "or optimize it with hydra/sweeper=exp_gopt",
                param=name,
                source=source,
            )
        assert sweep.start is not None and sweep.end is not None  # Hydra's interval() always sets both
        dtype = "int" if isinstance(sweep.start, int) and isinstance(sweep.end, int) else "float"
        prior = "log-uniform" if "log" in sweep.tags else "uniform"
        return RandomParam(name, sweep.start, sweep.end, prior=prior, dtype=dtype)
    raise SpaceError(f"unsupported sweep {override.input_line!r}: use choice, range or interval", param=name, source=source)


def parse_overrides(
    overrides: Sequence[str], source: str = "command line", enumerable: bool = False, exact_ranges: bool = False
) -> ParsedOverrides:
    """Split overrides into sweep parameters and pass-through overrides (``db.user=me``).

    ``enumerable`` (for grids) rejects ``interval(...)``, which has no grid values; without it
    (for optimization) ``range(...)`` keeps Hydra's meaning, its stop value excluded.
    ``exact_ranges`` (for writing a space file) keeps every ``range(...)`` as an EXP range
    with the same start, stop and step, which EXP's grid rules read as Hydra does.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as error:
        raise SpaceError(f"invalid override: {error}", source=source) from None
    params: List[Param] = []
    keys: Dict[str, str] = {}
    order: List[Tuple[str, str]] = []
    for line, override in zip(overrides, parsed):
        if not override.is_sweep_override():
            order.append(("raw", line))
            continue
        if override.is_delete() or override.package is not None:
            raise SpaceError(f"cannot sweep over {line!r}: only config values can be swept", source=source)
        try:
            params.append(_param(override.key_or_group, override, source, enumerable, exact_ranges))
        except SpaceError as error:
            raise error.located(source) from None
        keys[override.key_or_group] = override.get_key_element()
        order.append(("param", override.key_or_group))
    return ParsedOverrides(params, keys, order)


def parse_params_mapping(params: Mapping[str, str], source: str = "hydra.sweeper.params", enumerable: bool = False) -> ParsedOverrides:
    """``hydra.sweeper.params`` (key -> sweep string), as the basic and Optuna sweepers read it."""
    return parse_overrides([f"{key}={value}" for key, value in params.items()], source=source, enumerable=enumerable)


def merge(*layers: Sequence[Param]) -> Tuple[Param, ...]:
    """Later layers win on a name clash, keeping the position of the first definition."""
    merged: Dict[str, Param] = {}
    for layer in layers:
        for param in layer:
            merged[param.name] = param
    return tuple(merged.values())
