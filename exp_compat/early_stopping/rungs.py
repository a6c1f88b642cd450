"""Where a trial's rungs are: the steps at which the sweep decides whether it goes on.

The pruners place them (:mod:`exp_compat.early_stopping.pruners`), the job finds them in its
``EXP_RUNGS`` (:mod:`exp_compat.early_stopping.reporting`) and ``exp-compat rungs`` replays them: all
three read this one class, so they never disagree on where the rungs are.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Optional


@dataclasses.dataclass(frozen=True)
class Rungs:
    """The steps at which the sweep decides: ``start * factor**k`` (``factor``) or ``start + k * every``
    (``every``), for k = 0, 1, ..., below ``end`` (none at or past it: there the trial is complete)."""

    start: float
    factor: Optional[float] = None
    every: Optional[float] = None
    end: Optional[float] = None

    def at(self, k: int) -> Optional[float]:
        step = self.start * self.factor**k if self.factor is not None else self.start + k * (self.every or 0.0)
        return step if self.end is None or not reached(self.end, step) else None

    def crossed(self, step: float, first: int) -> Optional[int]:
        """The last rung index >= ``first`` whose step is <= ``step`` (a report past several rungs decides
        at the last of them), or None when ``step`` has not reached rung ``first``."""
        first_step = self.at(first)
        if first_step is None or not reached(first_step, step):
            return None
        # The index in closed form (a step of 10**12 must not walk 10**12 rungs), then corrected for rounding.
        if self.factor is not None:
            k = first + int(math.log(step / first_step, self.factor))
        else:
            k = first + int((step - first_step) // self.every) if self.every else first
        while k > first and ((rung := self.at(k)) is None or not reached(rung, step)):
            k -= 1
        while (rung := self.at(k + 1)) is not None and reached(rung, step):
            k += 1
        return k

    def to_text(self) -> str:
        return json.dumps({key: value for key, value in dataclasses.asdict(self).items() if value is not None})

    @classmethod
    def from_text(cls, text: str) -> "Rungs":
        return cls(**json.loads(text))


def reached(rung: float, step: float) -> bool:
    """``step`` is at or past ``rung``, up to rounding: 0.1 * 3 is 0.30000000000000004, and a step of 0.3 is there."""
    return rung <= step or math.isclose(rung, step, rel_tol=1e-12)
