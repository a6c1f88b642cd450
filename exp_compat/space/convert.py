"""EXP spaces as sweep definitions for Hydra's own sweepers.

``--to basic`` gives the grid (EXP runner rules) for Hydra's basic sweeper;
``--to optuna`` the optimization space (EXP gopt rules) in the
``hydra.sweeper.params`` syntax of the Optuna and Nevergrad sweepers.

Those sweepers re-render every value they pick, and that loses information
(``choice('1','true')`` reaches the job as ``1`` and ``True``, a value with
``${...}`` fails the run). So each value is checked by running it through
Hydra's own parser and the sweeper's own re-rendering, and every value that
would not reach the job exactly is reported. ``exp_grid``/``exp_gopt`` render
every job's overrides themselves (:mod:`exp_compat.overrides`) and lose nothing.
"""

from __future__ import annotations

import dataclasses
import itertools
import shlex
from typing import Any, Dict, Iterable, List, Optional, Sequence

from exp_compat.errors import SpaceError
from exp_compat.overrides import render_value
from exp_compat.space.grid import Grid, grid_length
from exp_compat.space.model import Space
from exp_compat.space.parameters import ListParam, Param, RandomParam, RangeParam, ValueParam, canonical

TARGETS = ("basic", "optuna")
# A parameter's values written out one by one (choice(...)) are each checked through Hydra's parser and the
# sweeper's re-rendering, about half a millisecond a value: convert writes at most this many, so that it answers
# at once, as validate does. A float range is written range(...) where Hydra expands it to exactly EXP's values,
# which is checked value by value (microseconds each) up to RANGE_LIMIT.
CHOICE_LIMIT = 1_000
RANGE_LIMIT = 100_000
FORMATS = ("yaml", "overrides")
_SWEEPER_CHOICE = {"basic": None, "optuna": "optuna"}


@dataclasses.dataclass
class SweepDefinition:
    """``hydra.sweeper.params`` for one target sweeper, plus what it cannot carry exactly."""

    target: str
    params: Dict[str, str]
    problems: List[str]

    def as_overrides(self) -> str:
        """One shell-quoted command-line string: paste it after ``python app.py -m``."""
        words = [f"{key}={value}" for key, value in self.params.items()]
        sweeper = _SWEEPER_CHOICE[self.target]
        if sweeper:
            words.insert(0, f"hydra/sweeper={sweeper}")
        return " ".join(_shell_word(word) for word in words)

    def as_yaml(self, comment: str = "") -> str:
        """A config file: use it as the primary config, or as a ``@package _global_`` option."""
        import yaml

        document: Dict[str, Any] = {}
        sweeper = _SWEEPER_CHOICE[self.target]
        if sweeper:
            document["defaults"] = [{"override /hydra/sweeper": sweeper}, "_self_"]
        document["hydra"] = {"sweeper": {"params": dict(self.params)}}
        header = "# @package _global_\n" + "".join(f"# {line}\n" for line in comment.splitlines())
        return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1 << 30)


def _shell_word(word: str) -> str:
    """Double quotes where they suffice (easier to read around Hydra's single quotes), else shlex."""
    if shlex.quote(word) == word or any(c in word for c in '"$`\\!'):
        return shlex.quote(word)
    return f'"{word}"'


def _choice(values: Sequence[Any]) -> str:
    return "choice(" + ",".join(render_value(v) for v in values) + ")"


def _emitted(line: str, target: str) -> List[str]:
    """The value strings the target sweeper hands to its jobs for this override (Hydra's own code)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Transformer

    override = OverridesParser.create().parse_override(line)
    if not override.is_sweep_override():
        return [override.get_value_element_as_str()]
    if target == "basic":
        return list(override.sweep_string_iterator())
    # The Optuna/Nevergrad sweepers keep the decoded values and format them with f"{name}={value}".
    return [str(x) for x in override.sweep_iterator(transformer=Transformer.encode)]


def job_value(override_line: str) -> Any:
    """What a job's config holds for this override, resolved, as Hydra composes it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from exp_compat._hydra_internals import apply_overrides

    override = OverridesParser.create().parse_override(override_line)
    config = OmegaConf.create({})
    apply_overrides([override], config)
    container = OmegaConf.to_container(config, resolve=True, throw_on_missing=True)
    node: Any = container
    for part in override.key_or_group.split("."):
        node = node[part]
    return node


def carry_problems(key: str, values: Sequence[Any], line: str, target: str) -> List[str]:
    """For each value the target sweeper would not deliver exactly, one sentence saying why."""
    problems = []
    name = key.lstrip("+")
    for value, emitted in zip(values, _emitted(line, target)):
        try:
            received = job_value(f"{key}={emitted}")
        except Exception as error:  # Hydra/OmegaConf reject it: the job would never start
            problems.append(f"{name}: value {value!r} would make the run fail ({type(error).__name__}: {error})")
            continue
        if canonical(received) != canonical(value):
            problems.append(
                f"{name}: value {value!r} ({type(value).__name__}) would reach the job as {received!r} ({type(received).__name__})"
            )
    return problems


def _param_sweep(key: str, values: Sequence[Any], target: str) -> tuple[str, List[str]]:
    sweep = render_value(values[0]) if len(values) == 1 and target == "optuna" else _choice(values)
    return sweep, carry_problems(key, values, f"{key}={sweep}", target)


def hydra_range(key: str, param: RangeParam, axis: Iterable[Any]) -> Optional[str]:
    """``range(low,high,step)`` where Hydra's own parser expands it to exactly the values of EXP's grid, else None.

    An integer range always is. For floats, Hydra adds the step in ``Decimal`` arithmetic where numpy (EXP)
    multiplies it, so the two agree for some steps (0.25) and not for others (0.1 gives 0.3 against
    0.30000000000000004): each value is compared.
    """
    if param.dtype == "int":
        return f"range({param.low},{param.high},{param.step})"
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweep = "range(" + ",".join(render_value(float(v)) for v in (param.low, param.high, param.step)) + ")"
    expanded = OverridesParser.create().parse_override(f"{key}={sweep}").sweep_iterator()
    missing = object()
    same = all(type(a) is float and a == b for a, b in itertools.zip_longest(expanded, axis, fillvalue=missing))
    return sweep if same else None


def _refuse_large(name: str, size: int, limit: float) -> None:
    """SpaceError where convert would write (or check) more values of one parameter than it does at once."""
    if size > limit:
        raise SpaceError(
            f"{size:,} values, more than convert writes ({CHOICE_LIMIT:,}, or {RANGE_LIMIT:,} for a float range that "
            "Hydra's range() expands alike); hydra/sweeper=exp_grid +exp.params=FILE reads the space itself, any size; "
            "or use a coarser step or fewer values",
            param=name,
        )


def _limit(param: Param) -> float:
    if isinstance(param, RangeParam):
        return float("inf") if param.dtype == "int" else RANGE_LIMIT
    return CHOICE_LIMIT


def basic_sweep(space: Space, seed: Optional[int] = None, runs: Optional[int] = None) -> SweepDefinition:
    """The EXP grid as a basic-sweeper definition (random parameters drawn with ``seed``)."""
    space.require_params()
    for param in space:  # before any value is drawn or built
        _refuse_large(param.name, grid_length(param), _limit(param))
    grid = Grid(space, seed=seed)
    params: Dict[str, str] = {}
    problems: List[str] = []
    for param, axis in zip(space, grid.axes):
        key = f"++{param.name}"
        compact = hydra_range(key, param, axis) if isinstance(param, RangeParam) else None
        if isinstance(param, ValueParam):
            params[key] = render_value(param.value)
            problems += carry_problems(key, [param.value], f"{key}={params[key]}", "basic")
        elif compact is not None:
            params[key] = compact
        else:
            _refuse_large(param.name, len(axis), CHOICE_LIMIT)
            params[key], found = _param_sweep(key, list(axis), "basic")
            problems += found
    if runs is not None:
        if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
            raise SpaceError(f"runs must be a whole number >= 1, got {runs!r}")
        params["++run"] = f"range(1,{runs + 1})"
    return SweepDefinition("basic", params, problems)


def optuna_sweep(space: Space) -> SweepDefinition:
    """The EXP optimization space (end points included) for the Optuna/Nevergrad sweepers."""
    space.require_params()
    params: Dict[str, str] = {}
    problems: List[str] = []
    for param in space:
        key = f"++{param.name}"
        if isinstance(param, (ValueParam, ListParam)):
            values = [param.value] if isinstance(param, ValueParam) else list(param.unique_values)
            _refuse_large(param.name, len(values), CHOICE_LIMIT)
            params[key], found = _param_sweep(key, values, "optuna")
            problems += found
            continue
        assert isinstance(param, (RangeParam, RandomParam))
        if param.dtype == "int":
            interval = f"int(interval({param.low},{param.high}))"
        else:
            interval = f"interval({render_value(float(param.low))},{render_value(float(param.high))})"
        log = isinstance(param, RandomParam) and param.prior == "log-uniform"
        params[key] = f"tag(log,{interval})" if log else interval
    return SweepDefinition("optuna", params, problems)


def convert(space: Space, target: str = "basic", seed: Optional[int] = None, runs: Optional[int] = None) -> SweepDefinition:
    if target not in TARGETS:
        raise SpaceError(f"unknown target {target!r}; allowed: {', '.join(TARGETS)}")
    if target == "optuna":
        if runs is not None:
            raise SpaceError("--runs applies to grids (--to basic); an optimization has no repeats")
        return optuna_sweep(space)
    return basic_sweep(space, seed=seed, runs=runs)


def space_from_sweep(overrides: Sequence[str], source: str = "command line") -> Space:
    """A Hydra sweep definition as an EXP space (``exp-compat export``), in the order given.

    ``choice`` becomes a list, ``range`` an EXP range with the same start, stop and step (EXP's
    grid rules, like Hydra's, leave out the stop value), ``interval`` a random parameter
    (``tag(log, interval(...))``: log-uniform) and a plain ``key=value`` a fixed value, as the job
    would receive it. Config-group choices and deletions have no place in an EXP space: an error.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from exp_compat.space.hydra_syntax import parse_overrides

    parsed = parse_overrides(overrides, source=source, exact_ranges=True)
    by_name = {param.name: param for param in parsed.params}
    params = []
    for kind, item in parsed.order:
        if kind == "param":
            params.append(by_name[item])
            continue
        override = OverridesParser.create().parse_override(item)
        if override.is_delete() or override.package is not None or override.is_hydra_override():
            raise SpaceError(f"cannot export {item!r}: only config values and their sweeps belong in an EXP space", source=source)
        params.append(ValueParam(override.key_or_group, job_value(item)))
    return Space(params, source=source)
