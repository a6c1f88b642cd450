"""Config dataclasses of the exp sweepers, registered in Hydra's ConfigStore.

Kept free of heavy imports: Hydra imports this module in every app that has
hydra-exp installed, sweeping or not.

They are the one statement of the options: Hydra checks every value against
them when it composes the config (a choice outside its Enum, a word where a
number goes: Hydra's error, exit 1, before the sweep starts), and the sweepers
read their options as these dataclasses; the sweepers check only what a type
cannot say (ranges, file names).
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore


class ProgressMode(Enum):
    auto = "auto"
    bar = "bar"
    log = "log"


# Functional form: `continue` and `async` are Python keywords, and OmegaConf takes a choice by member name.
OnFailure = Enum("OnFailure", [("continue", "continue"), ("cancel", "cancel")], module=__name__)
Mode = Enum("Mode", [("async", "async"), ("sync", "sync")], module=__name__)


class OnInterrupt(Enum):
    cancel = "cancel"
    wait = "wait"


class Surrogate(Enum):
    GP = "GP"
    RF = "RF"
    ET = "ET"
    GBRT = "GBRT"
    random = "random"


class Acquisition(Enum):
    EI = "EI"
    PI = "PI"
    LCB = "LCB"
    gp_hedge = "gp_hedge"


class PrunerKind(Enum):
    asha = "asha"
    median = "median"
    hyperband = "hyperband"


class PrunedValue(Enum):
    last = "last"
    capped = "capped"
    ignore = "ignore"


class Direction(Enum):
    minimize = "minimize"
    maximize = "maximize"


def parse_directions(value: Any) -> List[Direction]:
    """``hydra.sweeper.direction`` as a list: one direction, or one per objective (exp_gopt). ValueError says
    what is allowed. Typed ``Any`` in the dataclass because OmegaConf has no "an Enum or a list of it"."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    names = [item.value if isinstance(item, Enum) else item for item in items]
    allowed = [d.value for d in Direction]
    if not names or any(name not in allowed for name in names):
        raise ValueError(f"hydra.sweeper.direction must be minimize, maximize or a list of them (one per objective), got {value!r}")
    return [Direction(name) for name in names]


def direction_sign(direction: Enum) -> float:
    """1.0 to minimise, -1.0 to maximise (values are multiplied by it so that smaller is better). Read by
    value: Hydra's plugin scan re-executes this module, so a caller may hold another Direction class."""
    return -1.0 if direction.value == Direction.maximize.value else 1.0


@dataclass
class ExpSweeperConf:
    """Options shared by exp_grid and exp_gopt."""

    # An EXP TOML space; `+exp.params=FILE` in the app config works too (relative to where you ran).
    params_file: Optional[str] = None
    # Hydra sweep syntax, like the basic/Optuna sweepers: {key: "choice(a,b)" | "range(0,10)" | "interval(0,1)"}.
    # (An empty dict rather than null: OmegaConf 2.3 cannot merge a command line's {...} into a null dict.)
    params: Dict[str, str] = field(default_factory=dict)
    # Prefix of the files written in the sweep directory (EXP's --name).
    name: str = "exp"
    # Seed for random draws (grid) and for the optimizer (gopt); null draws one and records it.
    seed: Optional[int] = None
    # continue: record failures and go on; cancel: stop launching after the first failure (EXP's --cancel).
    on_failure: OnFailure = OnFailure["continue"]
    # Ctrl-C with an asynchronous launcher: cancel the running jobs (they run again on resume) or wait for them.
    on_interrupt: OnInterrupt = OnInterrupt.cancel
    # Stop once more than this fraction of finished jobs failed (1.0 = never).
    max_failure_rate: float = 1.0
    # Continue the sweep in hydra.sweep.dir: finished jobs are kept, unfinished ones re-run.
    resume: bool = False
    # auto: a progress bar on a terminal, log lines otherwise; bar; log.
    progress: ProgressMode = ProgressMode.auto
    # Whether smaller (minimize) or larger results are better: exp_gopt's objective, and every pruner's rungs.
    # exp_gopt: a list, one per objective, optimizes several at once (a Pareto front).
    direction: Any = Direction.minimize
    # Early stopping of trials that report as they train (exp_compat.report): null (none), asha, median, hyperband.
    pruner: Optional[PrunerKind] = None
    # The first rung's step, and the step at which a trial is complete (null: no end; hyperband needs one).
    min_resource: float = 1.0
    max_resource: Optional[float] = None
    # asha/hyperband: rungs at min_resource * reduction_factor**k; a trial goes on in the top 1/reduction_factor.
    reduction_factor: int = 3
    # No trial stops at a rung until this many other trials have reported there.
    n_startup_trials: int = 0
    # No rung before this step.
    n_warmup_steps: float = 0.0


@dataclass
class ExpGridConf(ExpSweeperConf):
    _target_: str = "hydra_plugins.exp_sweeper.exp_grid.ExpGridSweeper"
    name: str = "exp"
    # Repeat every configuration (EXP's -r); each job gets run = 1..runs.
    runs: int = 1
    # Run only these configuration ids (EXP's -c).
    config_ids: Optional[List[int]] = None
    # App config keys under which each job also receives its configuration id and run number (null: not
    # passed, so the app gets exactly the swept parameters). Every job has them in EXP_CONFIG_ID / EXP_RUN.
    id_key: Optional[str] = None
    run_key: Optional[str] = None
    # At most this many jobs per Launcher.launch call (null: chunks of 1,000, so that a huge grid is never held
    # whole); an asynchronous launcher gets one job at a time instead.
    max_batch_size: Optional[int] = None


ConfigStore.instance().store(group="hydra/sweeper", name="exp_grid", node=ExpGridConf, provider="hydra-exp")


@dataclass
class ExpGoptConf(ExpSweeperConf):
    _target_: str = "hydra_plugins.exp_sweeper.exp_gopt.ExpGoptSweeper"
    name: str = "opt"
    # Trials to finish in total, failed ones included (EXP's --n).
    n_trials: int = 20
    # GP, RF, ET, GBRT or random (EXP's --surrogate).
    surrogate: Surrogate = Surrogate.GP
    # EI, PI, LCB or gp_hedge (EXP's --acquisition).
    acquisition: Acquisition = Acquisition.EI
    kappa: float = 1.96  # exploration weight of LCB (EXP's --kappa)
    xi: float = 0.01  # improvement margin of EI and PI (EXP's --xi)
    # Random trials before the surrogate model is used.
    n_initial_points: int = 10
    # The key to read when the task returns a dict; a number is used directly. With several directions: a list of
    # keys, one per objective (null: the task returns a list of numbers, one per direction).
    objective: Any = None
    # Outcome constraints on what the task returns (a dict): {metric: "<= 20", other: ">= 0.9"}. A trial that
    # breaks one is infeasible: never the best, never in the Pareto set, and the optimizer is steered away from it.
    constraints: Dict[str, str] = field(default_factory=dict)
    # Trials at once (EXP's --workers); null: what the launcher runs at once if its config says, else 1.
    n_jobs: Optional[int] = None
    # async (EXP's default) or sync (EXP's --sync): wait for all n_jobs, then propose n_jobs points.
    mode: Mode = Mode["async"]
    # Write <name>_convergence.png and <name>_objective.png (EXP's --plot).
    plot: bool = False
    # Run a configuration again even if it already ran (for noisy objectives).
    allow_repeats: bool = False
    # A results CSV of an earlier optimization of the same space, to start from.
    warm_start: Optional[str] = None
    # With a pruner, what the optimizer is told of a pruned trial: its last reported value (last), that value but no
    # worse than the worst completed trial's (capped), or nothing (ignore: the point is only never proposed again).
    pruned_value: PrunedValue = PrunedValue.last


ConfigStore.instance().store(group="hydra/sweeper", name="exp_gopt", node=ExpGoptConf, provider="hydra-exp")
