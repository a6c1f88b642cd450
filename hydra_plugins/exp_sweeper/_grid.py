"""exp_grid: every configuration of an EXP grid (EXP's ``exp.run``), streamed to the launcher."""

from __future__ import annotations

import csv
import itertools
import logging
import re
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from omegaconf import OmegaConf

from exp_compat import Space
from exp_compat.files.columns import RESULT, STATUS, Status, own
from exp_compat.files.durable import atomic_writer
from exp_compat.space.grid import Grid
from exp_compat.space.parameters import RESERVED_ROOTS
from hydra_plugins.exp_sweeper._core import BOOKKEEPING, SweepCore, SweepError, Trial
from hydra_plugins.exp_sweeper._outcome import Outcome
from hydra_plugins.exp_sweeper._progress import Progress
from hydra_plugins.exp_sweeper._results import ResultsStore, SweepState, cell
from hydra_plugins.exp_sweeper.config import ExpGridConf

log = logging.getLogger("hydra_plugins.exp_sweeper")

# <name>_params.csv calls them id and run, as EXP's files did, the results CSV exp.id and exp.run (the sweep's own
# columns: exp_compat.files.columns); jobs receive them under id_key/run_key.
ID, RUN = "id", "run"
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_ABSENT = object()
# <name>_params.csv lists at most this many planned jobs (about a second to write), so that the first job of
# any grid, 10^12 configurations included, starts at once; the results CSV has every job that ran.
PLAN_LIMIT = 1_000_000
DEFAULT_CHUNK = 1_000  # jobs per Launcher.launch call when max_batch_size is null: bounded memory for huge grids


class GridStrategy:
    """Hands out the grid's rows in order, skipping (id, run) pairs already finished."""

    def __init__(
        self, grid: Grid, config_ids: Optional[Sequence[int]], done: Set[Tuple[int, int]], id_key: Optional[str], run_key: Optional[str]
    ):
        rows = plan(grid, config_ids)
        self.done = done  # consulted lazily: jobs recovered after this point are skipped too
        self.asked = False
        self.rows: Iterator[Dict[str, Any]] = (r for r in rows if (r[ID], r[RUN]) not in self.done)
        self.names = grid.names
        self.id_key = id_key
        self.run_key = run_key

    def ask(self, n: int) -> List[Trial]:
        self.asked = True
        trials = []
        for row in itertools.islice(self.rows, n):
            extra = {ID: row[ID], RUN: row[RUN]}
            overrides = [f"++{key}={value}" for key, value in ((self.id_key, row[ID]), (self.run_key, row[RUN])) if key]
            trials.append(Trial({name: row[name] for name in self.names}, extra, overrides))
        return trials

    def tell(self, trial: Trial, outcome: Outcome) -> Outcome:
        if not self.asked:  # recovered from before a kill: the grid must skip it. Jobs the grid handed out
            self.done.add((trial.extra[ID], trial.extra[RUN]))  # are past it: keeping them would grow per job
        return outcome

    def row(self, trial: Trial, outcome: Outcome) -> Dict[str, Any]:
        return {
            **trial.params,
            **{own(key): value for key, value in trial.extra.items()},
            RESULT: outcome.value if not outcome.failed else None,
        }

    def requeue(self, trials: List[Trial]) -> None:
        pass  # unfinished grid jobs are not in `done`, so the grid hands them out again in order

    def prepare(self) -> None:
        pass  # the grid's next row costs nothing to find

    def known_ahead(self) -> bool:
        return True  # the grid's order does not depend on results


def plan(grid: Grid, config_ids: Optional[Sequence[int]]) -> Iterator[Dict[str, Any]]:
    """The jobs to run, in order; a space with no parameters is one configuration (Hydra's convention)."""
    if not grid.names:
        return ({ID: 0, RUN: run} for run in range(1, grid.runs + 1))
    return grid.select(config_ids) if config_ids is not None else iter(grid)


def planned_rows(grid: Grid, config_ids: Optional[Sequence[int]]) -> Iterator[List[Any]]:
    """CSV rows ``[id, run, *cells]`` of every planned job.

    The full grid is written from each axis' cells combined by ``itertools.product``
    (C speed: a 10^6-configuration grid in about a second, which the sweep waits for).
    """
    if config_ids is not None or not grid.names:
        for row in plan(grid, config_ids):
            yield [row[ID], row[RUN], *(cell(row[name]) for name in grid.names)]
        return
    cells = [[cell(axis[i]) for i in range(len(axis))] for axis in grid.axes]
    runs = range(1, grid.runs + 1)
    for config_id, combo in enumerate(itertools.product(*cells)):
        for run in runs:
            yield [config_id, run, *combo]


def write_planned_grid(path: Any, grid: Grid, config_ids: Optional[Sequence[int]]) -> None:
    """``<name>_params.csv``: the first ``PLAN_LIMIT`` planned jobs (EXP's ``write_configs`` columns), written
    before any job starts."""
    with atomic_writer(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([ID, RUN, *grid.names])
        writer.writerows(itertools.islice(planned_rows(grid, config_ids), PLAN_LIMIT))


class GridSweep(SweepCore[ExpGridConf, GridStrategy]):
    kind = "exp_grid"
    schema = ExpGridConf
    enumerable = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.grid: Optional[Grid] = None
        self.ids: Optional[List[int]] = None
        self.total: Optional[int] = None  # jobs to run, once the grid is built

    def check_options(self) -> None:
        super().check_options()
        if len(self.directions) > 1:
            raise SweepError(
                f"{self.kind}: hydra.sweeper.direction is the pruner's, one of minimize or maximize, got {self.options.direction!r}"
            )

    def config_ids(self, grid: Grid) -> Optional[List[int]]:
        ids = self.options.config_ids
        if ids is None:
            return None
        if not ids:
            raise SweepError(
                f"{self.kind}: hydra.sweeper.config_ids is empty, so nothing would run; list configuration ids, or null for the whole grid"
            )
        bad = [i for i in ids if not 0 <= i < grid.size]
        if bad:
            raise SweepError(f"{self.kind}: config_ids {bad} are not configuration ids of this grid (0..{grid.size - 1})")
        return list(dict.fromkeys(ids))

    def job_keys(self, space: Space) -> Tuple[Optional[str], Optional[str]]:
        """``id_key`` and ``run_key``, refused where they would overwrite a key the job already gets."""
        keys = {"id_key": self.options.id_key, "run_key": self.options.run_key}
        for option, key in keys.items():
            if key is None:
                continue
            where = f"{self.kind}: hydra.sweeper.{option}={key!r}"
            if not _KEY.match(key) or key.split(".")[0] in RESERVED_ROOTS:
                raise SweepError(
                    f"{where} is not a key of the app's config: use a dotted name such as exp_id, outside hydra and exp, or null"
                )
            clash = [name for name in space.names if key == name or name.startswith(key + ".") or key.startswith(name + ".")]
            if clash:
                raise SweepError(f"{where} would overwrite the swept parameter {clash[0]!r}; choose another key or null")
            if OmegaConf.select(self.config, key, default=_ABSENT, throw_on_missing=False) is not _ABSENT:
                raise SweepError(
                    f"{where}: the app's config already has {key!r}, which the sweep would overwrite; "
                    f"choose a key it does not have (hydra.sweeper.{option}=exp_{option[:-4]}) or null "
                    f"(every job can read EXP_CONFIG_ID and EXP_RUN from its environment)"
                )
        if keys["id_key"] is not None and keys["id_key"] == keys["run_key"]:
            raise SweepError(f"{self.kind}: hydra.sweeper.id_key and run_key are both {keys['id_key']!r}; give them different keys")
        return keys["id_key"], keys["run_key"]

    def jobs(self) -> Optional[int]:
        return self.total

    def settings(self) -> Dict[str, Any]:
        return {"runs": self.options.runs, "config_ids": self.options.config_ids}

    def prepare(self, space: Space, state: SweepState) -> GridStrategy:
        runs = self.options.runs
        try:
            grid = Grid(space, runs=runs, seed=state.record["seed"])
        except Exception as error:
            raise SweepError(f"{self.kind}: {error}") from None
        self.grid, self.ids = grid, self.config_ids(grid)
        id_key, run_key = self.job_keys(space)
        self.total = len(self.ids) * runs if self.ids is not None else (grid.jobs if grid.names else runs)
        if runs > 1 and run_key is None:
            log.info(
                "%s: runs=%d: the repeats of a configuration receive identical configs (each job's run "
                "number is in its EXP_RUN environment variable; hydra.sweeper.run_key=KEY passes it in the "
                "config)",
                self.kind,
                runs,
            )
        return GridStrategy(grid, self.ids, set(), id_key, run_key)

    def results(self, space: Space) -> Tuple[str, List[str]]:
        assert self.grid is not None, "prepare() first"
        return f"{self.options.name}_results.csv", [*self.grid.names, own(ID), own(RUN), *BOOKKEEPING, RESULT]

    def begin(self, strategy: GridStrategy, store: ResultsStore) -> Progress:
        """Writes the planned jobs, unless a resumed sweep has them; the grid skips the jobs already finished."""
        assert self.grid is not None and self.total is not None, "prepare() first"
        planned = self.sweep_dir / f"{self.options.name}_params.csv"
        if not (self.options.resume and planned.exists()):
            write_planned_grid(planned, self.grid, self.ids)
            if self.total > PLAN_LIMIT:
                log.info("%s: %s jobs planned: %s lists the first %s", self.kind, f"{self.total:,}", planned.name, f"{PLAN_LIMIT:,}")
        strategy.done.update((int(r[own(ID)]), int(r[own(RUN)])) for r in store.rows)
        return Progress(
            self.kind,
            self.total,
            self.options.progress,
            done=len(store.rows),
            failed=sum(r[STATUS] == Status.FAILED for r in store.rows),
            pruned=sum(r[STATUS] == Status.PRUNED for r in store.rows),
        )

    def lanes(self) -> Tuple[int, bool]:
        """Every slot of an asynchronous launcher busy, up to the grid's size; otherwise batches of
        max_batch_size jobs, or chunks of DEFAULT_CHUNK (a huge grid is never held whole)."""
        assert self.total is not None, "prepare() first"
        slots = self.launcher_slots()
        if slots is None:
            return self.options.max_batch_size or DEFAULT_CHUNK, False
        slots = min(slots, self.total)
        log.info("%s: keeping %d jobs in flight (asynchronous launcher)", self.kind, slots)
        return slots, True
