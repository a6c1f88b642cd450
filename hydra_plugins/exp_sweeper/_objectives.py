"""What exp_gopt optimizes: one objective or several, under outcome constraints.

A trial's return value is read once into a :class:`Reading` (its objectives, the
metrics its constraints name, whether it is feasible). The optimizer minimises one
number per trial, so several objectives are told to it as one *scalarisation*
(:class:`Scalarisation`, ParEGO: Knowles, "ParEGO: a hybrid algorithm with on-line
landscape approximation for expensive multiobjective optimization problems", 2006):
objectives normalised to the extent of the Pareto front so far, combined with random weights by the
augmented Tchebycheff function, which reaches every point of the Pareto front (a
weighted sum reaches only its convex part). The weights are drawn again for every
model fit, so that successive fits aim at different parts of the front, from ParEGO's
evenly spread set (:func:`weight_lattice`), whose ends (one objective alone) send the search to
the front's extremes, which continuous random weights almost never do, and everything
stays asynchronous and pending-aware: the proposer sees one objective, as before.
Constraints are told to the proposer as slacks (:meth:`Objectives.slacks`, <= 0 where
a constraint holds), which it models separately (``_proposer.Feasibility``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from exp_compat.files.columns import EVALUATION, FEASIBLE, check_name, own
from hydra_plugins.exp_sweeper._outcome import objective_of
from hydra_plugins.exp_sweeper.config import Direction, direction_sign

_CONSTRAINT = re.compile(r"^\s*(<=|>=)\s*(\S+)\s*$")


@dataclasses.dataclass(frozen=True)
class Constraint:
    """``metric <= bound`` (upper) or ``metric >= bound``."""

    metric: str
    upper: bool
    bound: float

    def violation(self, value: float) -> float:
        return max(0.0, value - self.bound if self.upper else self.bound - value)

    def __str__(self) -> str:
        return f"{self.metric} {'<=' if self.upper else '>='} {self.bound:g}"


def parse_constraints(mapping: Optional[Mapping[str, Any]]) -> List[Constraint]:
    """``hydra.sweeper.constraints`` read, or ValueError naming the entry and the one syntax allowed."""
    constraints = []
    for metric, text in (mapping or {}).items():
        where = f"hydra.sweeper.constraints.{metric}={text!r}"
        check_name(str(metric), f"{where}: the metric")
        match = _CONSTRAINT.match(str(text)) if isinstance(text, str) else None
        try:
            bound = float(match.group(2)) if match else math.nan
        except ValueError:
            bound = math.nan
        if not math.isfinite(bound):
            raise ValueError(f"{where}: a constraint is '<= NUMBER' or '>= NUMBER' (quoted), for example {metric}: '<= 20'")
        constraints.append(Constraint(str(metric), match.group(1) == "<=", bound))  # type: ignore[union-attr]
    return constraints


@dataclasses.dataclass
class Reading:
    """One trial's result as the optimization reads it; ``values`` as returned (not signed)."""

    values: List[float]
    metrics: Dict[str, float]
    feasible: bool

    def progress_text(self) -> str:
        """How the progress line shows it."""
        return ", ".join(f"{v:.6g}" for v in self.values) + ("" if self.feasible else " (infeasible)")


class Objectives:
    """The objectives (their directions and where to read them) and the constraints of one optimization."""

    def __init__(self, directions: Sequence[Direction], keys: Any, constraints: Sequence[Constraint]):
        self.directions = list(directions)
        self.signs = np.array([direction_sign(d) for d in self.directions])
        self.constraints = list(constraints)
        n = len(self.directions)
        if n == 1:
            if isinstance(keys, (list, tuple)) and len(keys) != 1:
                raise ValueError(
                    f"hydra.sweeper.objective={list(keys)!r} is a list, but there is one direction: give one key, or one direction per key"
                )
            one = keys[0] if isinstance(keys, (list, tuple)) else keys
            self.keys: Optional[List[str]] = None if one is None else [str(one)]
        else:
            if keys is not None and (not isinstance(keys, (list, tuple)) or len(keys) != n):
                raise ValueError(
                    f"hydra.sweeper.objective={keys!r}: with {n} directions, give a list of {n} keys of the dict the task "
                    "returns (or null: the task returns a list of numbers, one per direction)"
                )
            self.keys = None if keys is None else [str(k) for k in keys]
        if self.constraints and self.keys is None:
            raise ValueError(
                "hydra.sweeper.constraints are read from the dict the task returns: set hydra.sweeper.objective to the key "
                f"(or keys) of the objective{'s' if n > 1 else ''} in it"
            )
        if self.keys is not None and len(set(self.keys)) < len(self.keys):
            raise ValueError(f"hydra.sweeper.objective={self.keys!r} names a key twice")
        for key in self.keys or ():
            if not key:
                raise ValueError(f"hydra.sweeper.objective={keys!r}: a key is empty; name a key of the dict the task returns")
            check_name(key, f"hydra.sweeper.objective={keys!r}: the key")
        objective_keys = set(self.keys or ())
        self.metric_names = list(dict.fromkeys(c.metric for c in self.constraints if c.metric not in objective_keys))

    @property
    def multi(self) -> bool:
        return len(self.directions) > 1

    @property
    def plain(self) -> bool:
        """One objective, no constraint: the optimizer is told the objective itself."""
        return not self.multi and not self.constraints

    @property
    def value_columns(self) -> List[str]:
        """The results CSV's columns of the objectives: ``exp.evaluation`` for one (EXP's column), the keys of
        several, ``exp.values_<i>`` for a returned list."""
        if not self.multi:
            return [EVALUATION]
        return list(self.keys) if self.keys else [own(f"values_{i}") for i in range(len(self.directions))]

    @property
    def columns(self) -> List[str]:
        return [*self.value_columns, *self.metric_names, *([FEASIBLE] if self.constraints else [])]

    def read(self, value: Any) -> Reading:
        """A trial's return value, or ValueError saying what is wrong with it."""
        n = len(self.directions)
        if self.keys is not None:
            values = [objective_of(value, key) for key in self.keys]
        elif n == 1:
            values = [objective_of(value)]
        else:
            try:
                length = None if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__getitem__") else len(value)
            except TypeError:  # a 0-d array
                length = None
            if isinstance(value, Mapping):
                raise ValueError(
                    f"returned a dict (keys: {', '.join(map(str, value))}), expected a list of {n} numbers (one per direction); "
                    f"to read a dict, set hydra.sweeper.objective to a list of {n} of its keys"
                )
            if length is None:
                raise ValueError(f"returned {value!r:.80}, expected a list of {n} numbers (one per direction)")
            if length != n:
                raise ValueError(f"returned {length} values, expected {n} (one per direction)")
            values = []
            for i in range(n):
                try:
                    values.append(objective_of(value[i]))
                except ValueError as error:
                    raise ValueError(f"objective {i}: {error}") from None
        named = dict(zip(self.keys or (), values))
        metrics = {name: objective_of(value, name, what="constraint metric") for name in self.metric_names}
        return Reading(values, metrics, self.feasible({**named, **metrics}))

    def slacks(self, reading: Reading) -> List[float]:
        """How far each constraint is from breaking (<= 0: it holds), in the metric's units."""
        named = {**dict(zip(self.keys or (), reading.values)), **reading.metrics}
        return [named[c.metric] - c.bound if c.upper else c.bound - named[c.metric] for c in self.constraints]

    def feasible(self, metrics: Mapping[str, float]) -> bool:
        return all(c.violation(metrics[c.metric]) == 0 for c in self.constraints)

    def cells(self, reading: Optional[Reading]) -> Dict[str, Any]:
        """A trial's cells in the results CSV (empty for a failed trial)."""
        if reading is None:
            return {}
        cells: Dict[str, Any] = {**dict(zip(self.value_columns, reading.values)), **reading.metrics}
        if self.constraints:
            cells[FEASIBLE] = reading.feasible
        return cells

    def from_row(self, row: Mapping[str, str]) -> Optional[Reading]:
        """A results CSV row's reading (None for a trial without values); KeyError/ValueError if the row
        lacks a column or holds no number. Feasibility is judged again: a warm start may have other constraints."""
        if any(row[column] == "" for column in self.value_columns):
            return None
        values = [float(row[column]) for column in self.value_columns]
        metrics = {name: float(row[name]) for name in self.metric_names}
        return Reading(values, metrics, self.feasible({**dict(zip(self.keys or (), values)), **metrics}))

    def signed(self, readings: Sequence[Reading]) -> Any:
        """The readings' values as an (n, objectives) array, each column smaller-is-better."""
        return np.array([r.values for r in readings], dtype=float).reshape(len(readings), len(self.directions)) * self.signs


class Scalarisation:
    """ParEGO's augmented Tchebycheff scalarisation of several objectives (see the module docstring)."""

    RHO = 0.05  # weight of the sum term, which breaks ties between weakly Pareto-optimal points

    def __init__(self, objectives: Objectives, seed: int):
        self.objectives = objectives
        self.rng = np.random.RandomState(seed)
        n = len(objectives.directions)
        self.lattice = weight_lattice(n)
        self.weights = np.full(n, 1.0 / n)
        self.low = np.zeros(n)
        self.scale = np.ones(n)

    def redraw(self, readings: Sequence[Reading]) -> None:
        """New weights, and the normalisation: 0 at the best value of each objective among the results so far
        (the feasible ones, where there are), 1 at the worst value of the Pareto front among them."""
        o = self.objectives
        self.weights = self.lattice[self.rng.randint(len(self.lattice))]
        feasible = [r for r in readings if r.feasible] or list(readings)
        if feasible:
            signed = o.signed(feasible)
            self.low = signed.min(axis=0)
            # the front's extent, not all results': a far-off result would squeeze the front into a corner
            self.scale = _spread(signed[non_dominated(signed)].max(axis=0) - self.low)

    def __call__(self, reading: Reading) -> float:
        z = (self.objectives.signed([reading])[0] - self.low) / self.scale
        return float(np.max(self.weights * z) + self.RHO * np.sum(self.weights * z))


def normal_scores(values: Sequence[float]) -> List[float]:
    """Each value replaced by the standard normal quantile of its rank (ties share their mean rank).

    With a pruner the surrogate is told values from different steps: a curve cut at its first epoch
    (an error of 0.9) beside finished trials that differ in the second decimal. Fitted to the values, a
    GP spends its scale on that tail, its expected improvement is flat among the good trials, and it
    goes where it is most uncertain; fitted to the scores it keeps the order, which is what decides where
    to look next, and sees the good trials as far apart as the bad ones (a Gaussian copula: Salinas et
    al., "A quantile-based approach for hyperparameter transfer learning", ICML 2020)."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    if not values:
        return []
    return [float(z) for z in ndtri((rankdata(values) - 0.5) / len(values))]


def weight_lattice(n: int) -> Any:
    """ParEGO's weight vectors for ``n`` objectives: every vector of multiples of 1/s that sums to 1
    (s = 10 for two objectives, 4 for three, as Knowles chose; 3 beyond, to keep the set small)."""
    steps = {2: 10, 3: 4}.get(n, 3)
    return np.array([c for c in itertools.product(range(steps + 1), repeat=n) if sum(c) == steps], dtype=float) / steps


def _spread(ranges: Any) -> Any:
    """Ranges to divide by: a range of 0 (one result, or a constant) divides by 1."""
    return np.where(ranges > 0, ranges, 1.0)


def non_dominated(signed: Any) -> Any:
    """Mask of the rows of ``signed`` (smaller is better in every column) that no other row dominates; of equal
    rows, the first is kept."""
    signed = np.asarray(signed, dtype=float)
    keep = np.ones(len(signed), dtype=bool)
    for i, row in enumerate(signed):
        others = np.delete(np.arange(len(signed)), i)
        better_or_equal = np.all(signed[others] <= row, axis=1)
        strictly = np.any(signed[others] < row, axis=1)
        earlier_equal = np.all(signed[others] == row, axis=1) & (others < i)
        keep[i] = not np.any((better_or_equal & strictly) | earlier_equal)
    return keep


def hypervolume(signed: Any, reference: Any) -> float:
    """The volume dominated by the rows of ``signed`` (smaller is better) and bounded by ``reference``;
    rows not better than the reference in every column add nothing. Exact, by slicing along the first
    column (fine for the few objectives and hundreds of points of a sweep)."""
    ref = np.asarray(reference, dtype=float)
    points = np.asarray(signed, dtype=float).reshape(-1, len(ref))
    points = points[np.all(points < ref, axis=1)]
    if not len(points):
        return 0.0
    if len(ref) == 1:
        return float(ref[0] - points[:, 0].min())
    points = points[np.argsort(points[:, 0])]
    volume = 0.0
    for i in range(len(points)):
        right = points[i + 1, 0] if i + 1 < len(points) else ref[0]
        if right > points[i, 0]:
            volume += (right - points[i, 0]) * hypervolume(points[: i + 1, 1:], ref[1:])
    return volume
