"""The sweep's early-stopping rules: which steps of a trial are rungs, and whether a trial at a rung goes on.

Pure bookkeeping, no I/O: the values recorded at each rung, and a decision per
report at a rung. Values are minimized (the caller flips the sign for
``direction=maximize``). Trials are named by a key that survives a resume (the
configuration's id and run), so a resumed sweep that replays its rung journal
holds exactly the rungs it had.

- ``asha`` (asynchronous successive halving, Li et al. 2020): rungs at
  ``min_resource * reduction_factor**k``; a trial goes on if its value is among
  the best ``max(1, n // reduction_factor)`` of the ``n`` values recorded at that
  rung so far, its own included. A rung never waits to fill: the first trial to
  reach it goes on.
- ``median`` (the median stopping rule): rungs every ``min_resource`` steps; a
  trial goes on unless its value is worse than the median of the other trials'
  values at that rung.
- ``hyperband``: several ASHA brackets, the first rung of bracket ``b`` at
  ``min_resource * reduction_factor**b`` (the last bracket never stops a trial).
  A trial's bracket follows from a hash of the sweep's seed and its key, so it is
  the same in every process and on every resume; brackets are weighted as in
  Hyperband, so each gets a similar budget.

Every rule lets a trial go on while fewer than ``n_startup_trials`` other trials
have reported at its rung, and has no rung before ``n_warmup_steps``.
"""

from __future__ import annotations

import abc
import hashlib
import itertools
import math
import statistics
from typing import Dict, List, Optional

from exp_compat.early_stopping.rungs import Rungs

MAX_BRACKETS = 64


class Pruner(abc.ABC):
    def __init__(
        self, min_resource: float, max_resource: Optional[float], reduction_factor: int, n_startup_trials: int, n_warmup_steps: float
    ):
        self.min_resource = min_resource
        self.max_resource = max_resource
        self.reduction_factor = reduction_factor
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps
        # (bracket, rung index) -> trial key -> the first value recorded there
        self.recorded: Dict[tuple, Dict[str, float]] = {}

    def rungs(self, key: str) -> Rungs:
        """The rungs of the trial named ``key``."""
        return self.bracket_rungs(self.bracket(key))

    @abc.abstractmethod
    def bracket_rungs(self, bracket: int) -> Rungs:
        """The rungs of a bracket's trials (one bracket, 0, but for hyperband)."""

    def bracket(self, key: str) -> int:
        return 0

    def record(self, key: str, rung: int, value: float) -> bool:
        """Keep ``value`` as the trial's value at rung ``rung``; False if it already had one (the first stands)."""
        at = self.recorded.setdefault((self.bracket(key), rung), {})
        if key in at:
            return False
        at[key] = value
        return True

    def decide(self, key: str, rung: int, value: float) -> bool:
        """Record the trial's value at ``rung`` and say whether it goes on (True) or stops (False)."""
        self.record(key, rung, value)
        at = self.recorded[(self.bracket(key), rung)]
        value = at[key]
        others = [v for k, v in at.items() if k != key]
        if len(others) < self.n_startup_trials:
            return True
        return self.goes_on(value, others)

    @abc.abstractmethod
    def goes_on(self, value: float, others: List[float]) -> bool:
        """The rule at a rung, given the values the other trials recorded there."""

    def _start(self, first: float, factor: Optional[float], every: Optional[float]) -> Rungs:
        """Rungs from ``first``, the ones before ``n_warmup_steps`` left out."""
        rungs = Rungs(first, factor=factor, every=every, end=self.max_resource)
        k = 0
        while (step := rungs.at(k)) is not None and step < self.n_warmup_steps:
            k += 1
        start = rungs.at(k)
        if start is None:  # every rung is before the warm-up ends: none is left
            return Rungs(self.max_resource or math.inf, end=self.max_resource)
        return Rungs(start, factor=factor, every=every, end=self.max_resource)


class AshaPruner(Pruner):
    def bracket_rungs(self, bracket: int) -> Rungs:
        return self._start(self.min_resource * self.reduction_factor**bracket, float(self.reduction_factor), None)

    def goes_on(self, value: float, others: List[float]) -> bool:
        ranked = sorted([*others, value])
        keep = max(1, len(ranked) // self.reduction_factor)
        return value <= ranked[keep - 1]


class MedianPruner(Pruner):
    def bracket_rungs(self, bracket: int) -> Rungs:
        return self._start(self.min_resource, None, self.min_resource)

    def goes_on(self, value: float, others: List[float]) -> bool:
        return not others or value <= statistics.median(others)


class HyperbandPruner(AshaPruner):
    def __init__(self, *args: object, seed: int, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        assert self.max_resource is not None, "hyperband needs max_resource"
        base = Rungs(self.min_resource, factor=float(self.reduction_factor), end=self.max_resource)
        n = 1 + sum(1 for _ in itertools.takewhile(lambda k: base.at(k) is not None, range(MAX_BRACKETS)))
        eta = self.reduction_factor
        # Hyperband's n_i = ceil((s_max + 1) / (s + 1) * eta**s), with s = n - 1 - b rungs in bracket b.
        self.weights = [math.ceil(n / (n - b) * eta ** (n - 1 - b)) for b in range(n)]
        self.seed = seed

    def bracket(self, key: str) -> int:
        digest = hashlib.sha256(f"{self.seed}:{key}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") % sum(self.weights)
        for b, limit in enumerate(itertools.accumulate(self.weights)):
            if draw < limit:
                return b
        raise AssertionError("unreachable: draw < sum(weights)")


def make_pruner(
    kind: str,
    min_resource: float,
    max_resource: Optional[float],
    reduction_factor: int,
    n_startup_trials: int,
    n_warmup_steps: float,
    seed: int,
) -> Pruner:
    args = (min_resource, max_resource, reduction_factor, n_startup_trials, n_warmup_steps)
    if kind == "hyperband":
        return HyperbandPruner(*args, seed=seed)
    return {"asha": AshaPruner, "median": MedianPruner}[kind](*args)
