"""Whether a sweep stops trials early, decided once from the options: the sweep's pruning policy.

Every exp sweep records what its jobs report (the curves); only some judge them. What differs between the two
is asked of one object, made once by :func:`pruning_policy` from the options the user typed, instead of
asking "is there a pruner?" wherever it matters: :class:`NoPruning` records and suggests where a pruner could
cut; :class:`Pruning` makes the pruner, says which settings a resumed sweep must share, adds the ``steps``
column and warns when a job reports nothing to judge.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from exp_compat.early_stopping.pruners import Pruner, make_pruner
from exp_compat.files.columns import STEPS
from hydra_plugins.exp_sweeper._outcome import Outcome
from hydra_plugins.exp_sweeper.config import Direction, ExpSweeperConf

log = logging.getLogger("hydra_plugins.exp_sweeper")


class NoPruning:
    """Every trial trains to its end; the reports are recorded all the same."""

    active = False

    def pruner(self, seed: int) -> Optional[Pruner]:
        return None

    def state(self) -> Dict[str, Any]:
        """What a resumed sweep must share (nothing here: sweeps saved before pruners existed still resume)."""
        return {}

    def columns(self, columns: Sequence[str]) -> List[str]:
        return list(columns)

    def row(self, outcome: Outcome) -> Dict[str, Any]:
        return {}

    def unjudged(self, kind: str, job_num: int, outcome: Outcome) -> None:
        """A job ended without reporting a step: nothing to judge, nothing to say."""

    def after(self, kind: str, curves: Path) -> None:
        """The sweep ended: where its curves are, and the command that tells how early a pruner could cut."""
        if curves.exists():
            log.info("%s: the jobs' reports are in %s; 'exp-compat rungs' on it tells how early a pruner could cut", kind, curves)


@dataclasses.dataclass
class Pruning(NoPruning):
    """A pruner decides at rungs; its settings are read once, checked against each other, and kept."""

    kind: str
    min_resource: float
    max_resource: Optional[float]
    reduction_factor: int
    n_startup_trials: int
    n_warmup_steps: float
    direction: Direction
    silent_jobs: int = 0  # jobs that ended without reporting: warned once

    active = True

    def pruner(self, seed: int) -> Pruner:
        return make_pruner(
            self.kind, self.min_resource, self.max_resource, self.reduction_factor, self.n_startup_trials, self.n_warmup_steps, seed
        )

    def state(self) -> Dict[str, Any]:
        settings = ("min_resource", "max_resource", "reduction_factor", "n_startup_trials", "n_warmup_steps")
        return {
            "pruning": {
                "pruner": self.kind,
                **{key: getattr(self, key) for key in settings},
                "direction": self.direction.value,
            }
        }

    def columns(self, columns: Sequence[str]) -> List[str]:
        return [*columns, STEPS]  # the last step each job reported

    def row(self, outcome: Outcome) -> Dict[str, Any]:
        return {STEPS: outcome.steps}

    def unjudged(self, kind: str, job_num: int, outcome: Outcome) -> None:
        if outcome.failed or outcome.steps is not None:
            return
        self.silent_jobs += 1
        if self.silent_jobs == 1:
            log.warning(
                "%s: job #%d reported no step, so the pruner could not judge it: call exp_compat.report(step, value) "
                "in the training loop (see the README)",
                kind,
                job_num,
            )

    def after(self, kind: str, curves: Path) -> None:
        """Nothing to suggest: this sweep pruned."""


def pruning_policy(options: ExpSweeperConf, directions: Sequence[Direction]) -> NoPruning:
    """The policy the options ask for, or ValueError naming the options that contradict each other."""
    o = options
    if o.pruner is None:
        return NoPruning()
    name = o.pruner.value
    where = f"hydra.sweeper.pruner={name}"
    if len(directions) > 1:
        raise ValueError(f"{where}: a pruner ranks trials by one objective, but hydra.sweeper.direction lists {len(directions)}")
    if o.max_resource is not None and not o.min_resource < o.max_resource:
        raise ValueError(
            f"{where}: min_resource={o.min_resource!r} must be smaller than max_resource={o.max_resource!r} "
            "(the step at which a trial is complete)"
        )
    if o.max_resource is None and name == "hyperband":
        raise ValueError(f"{where} needs max_resource, the step at which a trial is complete (its number of epochs)")
    policy = Pruning(name, o.min_resource, o.max_resource, o.reduction_factor, o.n_startup_trials, o.n_warmup_steps, directions[0])
    if policy.pruner(seed=0).bracket_rungs(0).at(0) is None:
        raise ValueError(
            f"{where}: no step is left where a trial could be stopped: every rung (from min_resource={o.min_resource!r}, "
            f"after n_warmup_steps={o.n_warmup_steps!r}) is at or past max_resource={o.max_resource!r}"
        )
    return policy
