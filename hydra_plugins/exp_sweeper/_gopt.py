"""exp_gopt: global optimization of an EXP space with scikit-optimize (EXP's ``exp.gopt``)."""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from omegaconf import OmegaConf

from exp_compat import Space, SpaceError
from exp_compat.files.columns import ID, RUN, STATUS, Status, read_table
from exp_compat.space.search import SearchSpace
from hydra_plugins.exp_sweeper._core import BOOKKEEPING, SweepCore, SweepError, Trial
from hydra_plugins.exp_sweeper._objectives import Objectives, Reading, Scalarisation, non_dominated, normal_scores, parse_constraints
from hydra_plugins.exp_sweeper._outcome import Outcome, objective_of
from hydra_plugins.exp_sweeper._progress import Progress
from hydra_plugins.exp_sweeper._pruning import Pruning
from hydra_plugins.exp_sweeper._results import ResultsStore, SweepState, cell, write_summary
from hydra_plugins.exp_sweeper.config import Acquisition, ExpGoptConf, Mode, PrunedValue

if TYPE_CHECKING:  # scikit-optimize and scikit-learn take seconds to import: after the workers are started
    from hydra_plugins.exp_sweeper._proposer import Proposer

log = logging.getLogger("hydra_plugins.exp_sweeper")
SUMMARY = "optimization_results.yaml"  # the Optuna sweeper's name for it
VALUED = (Status.COMPLETED, Status.PRUNED)  # the trials whose row holds an objective value


def describe_exhaustion(size: Optional[int]) -> str:
    return f"all {size} distinct configurations of this finite space have run" if size else "no new configuration left"


def point_from_row(search: SearchSpace, row: Dict[str, str]) -> List[Any]:
    """A CSV row's parameters as an optimizer point (types from the dimensions); ValueError for a value outside
    the space (a warm start's file may hold any), which the optimizer would refuse with a traceback."""
    from skopt.space import Categorical, Integer

    point = []
    for dim in search.dimensions:
        text = row[dim.name]
        if isinstance(dim, Categorical):
            matches = [c for c in dim.categories if cell(c) == text]
            if not matches:
                raise ValueError(f"{dim.name}={text!r} is not one of {list(dim.categories)}")
            point.append(matches[0])
        else:
            value = int(float(text)) if isinstance(dim, Integer) else float(text)
            if value not in dim:
                raise ValueError(f"{dim.name}={text!r} is outside [{dim.low}, {dim.high}]")
            point.append(value)
    return point


class GoptStrategy:
    """Trials from the proposer until ``n_trials`` have finished.

    Fitting the surrogate takes from tens of milliseconds to seconds, growing with the number of
    results. In asynchronous mode (:meth:`prepare`) results are recorded as they arrive and the fit
    runs in the background while the jobs run; a freed slot's proposal never waits for it: it uses
    the latest fit and accounts for the results that arrived since (the proposer's module docstring
    says how), so the slot gets its next trial at once and the proposal still knows every result.
    Otherwise (batches) results are told in one fit per ask.
    """

    def __init__(
        self,
        search: SearchSpace,
        proposer: Proposer,
        n_trials: int,
        objectives: Objectives,
        pruned_value: PrunedValue = PrunedValue.last,
        seed: int = 0,
        scored: bool = False,
    ):
        self.search = search
        self.proposer = proposer
        self.n_trials = n_trials
        self.objectives = objectives
        self.sign = float(objectives.signs[0])
        # Several objectives or constraints: each trial's reading is kept (the Pareto set, the feasible best);
        # several objectives are told as a scalarisation drawn again for each fit (see _objectives), so the
        # readings are kept in the order told, to tell them again.
        self.scalarisation = Scalarisation(objectives, seed) if objectives.multi else None
        self.readings: List[Tuple[Dict[str, Any], Reading, bool]] = []  # (params, reading, this sweep's own)
        proposer.constrain(len(objectives.constraints))
        self.pruned_value = PrunedValue(pruned_value.value)  # by value, as direction_sign says why
        # With a pruner the surrogate is fitted to the values' normal scores (see normal_scores); the values
        # themselves, as told, are kept here in the order told (the convergence plot shows them).
        self.scored = scored
        self.told: List[float] = []
        self.stale = False  # the proposer holds scores of fewer values than told (recorded while a fit ran)
        self.worst_completed: Optional[float] = None  # as told (signed: smaller is better)
        self.finished = 0
        self.n_failed = 0
        self.n_pruned = 0
        self.next_id = 0
        self.pending: Dict[int, List[Any]] = {}
        self.requeued: List[Trial] = []
        self.untold: List[tuple] = []
        self.best_value: Optional[float] = None
        self.best_params: Optional[Dict[str, Any]] = None
        self.exhausted = False
        self.fitting: Optional["concurrent.futures.Future[None]"] = None
        self._background: Optional[concurrent.futures.ThreadPoolExecutor] = None

    def _learn(self, point: List[Any], params: Dict[str, Any], value: Any, completed: bool, own: bool = True) -> None:
        """Remember a finished trial: the optimizer is told its value (a pruned trial's as ``pruned_value``
        says: docs/sweepers.md, early stopping). Only a completed (and feasible) trial of this sweep (``own``:
        not a warm start's) can be the best or in the Pareto set."""
        self.proposer.remember(point)
        if value is None:
            return
        if isinstance(value, Reading):
            self.readings.append((params, value, own))
            self.untold.append((point, value))
            if value.feasible and not self.objectives.multi:
                self._consider(value.values[0], params, own)
            return
        told = self.sign * value
        if completed:
            self.worst_completed = told if self.worst_completed is None else max(self.worst_completed, told)
        elif self.pruned_value is PrunedValue.ignore:
            return
        elif self.pruned_value is PrunedValue.capped and self.worst_completed is not None:
            told = min(told, self.worst_completed)  # bad, but not by a truncated curve's margin
        self.untold.append((point, told))
        if completed:
            self._consider(value, params, own)

    def _consider(self, value: float, params: Dict[str, Any], own: bool) -> None:
        if own and (self.best_value is None or self.sign * value < self.sign * self.best_value):
            self.best_value, self.best_params = value, params

    def own_readings(self) -> List[Tuple[Dict[str, Any], Reading]]:
        """This sweep's trials with their readings (a warm start's are told, not reported), in the order told."""
        return [(params, reading) for params, reading, own in self.readings if own]

    def replay(self, rows: Sequence[Dict[str, str]], count: bool) -> None:
        """Earlier results: this sweep's own (resume, ``count``) or another's (warm start)."""
        for row in rows:
            try:
                point = point_from_row(self.search, row)
            except (KeyError, ValueError) as error:
                raise SweepError(f"exp_gopt: cannot read an earlier result: {error}") from None
            value: Any = None
            if row[STATUS] in VALUED:
                try:
                    value = self.objectives.from_row(row)
                except KeyError as error:
                    raise SweepError(
                        f"exp_gopt: cannot read an earlier result: it has no column {error} (made with other objectives or constraints?)"
                    ) from None
                except ValueError as error:
                    raise SweepError(f"exp_gopt: cannot read an earlier result: {error}") from None
                if value is not None and self.objectives.plain:
                    value = value.values[0]
            valued = value is not None
            self._learn(point, self.search.to_config(point), value, completed=row[STATUS] == Status.COMPLETED, own=count)
            if count:
                self.finished += 1
                self.n_failed += not valued
                self.n_pruned += valued and row[STATUS] == Status.PRUNED
                self.next_id = max(self.next_id, int(row[ID]) + 1)

    def _tell_untold(self, fit: bool, redraw: bool = False) -> None:
        """The results not told yet, to the proposer: fitted now (``fit``) or recorded for the next refit.
        With several objectives, a fit (``fit`` or ``redraw``: a refit is about to start) draws the
        scalarisation again and tells every earlier result again with it, also when every result was
        recorded before (an asynchronous sweep records them as they arrive, then starts the refit), but
        not when the fit has seen them all: it would then not be refitted to the new values."""
        fitted = self.proposer.fitted
        unfitted = bool(self.untold) or fitted is None or fitted.n < len(self.proposer.y)
        if self.scalarisation is not None and (fit or redraw) and unfitted:
            readings = [reading for _, reading, _ in self.readings]
            self.scalarisation.redraw(readings)
            self.proposer.retell([self.scalarisation(r) for r in readings[: len(self.proposer.y)]])
        if not self.untold:
            if self.stale and (fit or redraw):  # scores recorded while a fit ran: the next fit learns them anew
                self._scored([], retell=True)
            return
        points, values = zip(*self.untold)
        slacks = [self.objectives.slacks(r) for r in values] if self.objectives.constraints else []
        if self.scalarisation is not None:
            told = [self.scalarisation(r) for r in values]
        else:
            one = values if self.objectives.plain else [self.sign * r.values[0] for r in values]
            told = self._scored(list(one), retell=fit or redraw)
        (self.proposer.tell if fit else self.proposer.record)(list(points), told, slacks)
        self.untold = []

    def _scored(self, values: List[float], retell: bool) -> List[float]:
        """New values (one objective, signed) as the proposer is told them: themselves, or with ``scored`` their
        normal scores among every value so far. A new value moves every score, so the earlier ones are told
        again when a fit is about to learn them (``retell``); between fits they keep the scores of the last."""
        self.told += values
        if not self.scored:
            return values
        scores = normal_scores(self.told)
        known = len(self.proposer.y)
        if retell:
            self.proposer.retell(scores[:known])
        self.stale = not retell
        return scores[known:]

    def _budget(self) -> int:
        return self.n_trials - self.finished - len(self.pending)

    def prepare(self) -> None:
        """Refit the surrogate with the results that arrived, in the background (one refit at a time;
        the proposer records and proposes meanwhile, with its previous fit)."""
        if self._background is None:
            self._background = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="exp-gopt-refit")
        if self.fitting is not None:
            if not self.fitting.done():
                self._tell_untold(fit=False)
                return
            self.fitting.result()  # a fit that failed fails the sweep here
        self._tell_untold(fit=False, redraw=True)
        self.fitting = self._background.submit(self.proposer.refit, list(self.pending.values()))

    def close(self) -> None:
        """The sweep is over: the model is fitted to every result (the plots draw it)."""
        if self._background is not None:
            self._background.shutdown(wait=True)
            self._tell_untold(fit=False, redraw=True)
            self.proposer.refit()
        else:
            self._tell_untold(fit=True)

    def known_ahead(self) -> bool:
        """Trials of an earlier run to run again, and the random initial points, do not wait for results;
        a proposal does (it is best made with every result so far)."""
        known = len(self.proposer.y) + len(self.untold) + len(self.pending)
        return bool(self.requeued) or (self.proposer.fitted is None and known < self.proposer.n_initial_points)

    def ask(self, n: int) -> List[Trial]:
        # batches: one fit now, before proposing; asynchronous: recorded, fitted in the background
        self._tell_untold(fit=self._background is None)
        k = min(n, self._budget())
        if k <= 0:
            return []
        trials: List[Trial] = []
        while self.requeued and len(trials) < k:
            trial = self.requeued.pop(0)
            self.pending[trial.extra["id"]] = self.search.to_point(trial.params)
            trials.append(Trial(trial.params, trial.extra))
        k -= len(trials)
        points = self.proposer.propose(k, list(self.pending.values())) if k else []
        if len(points) < k and self.proposer.exhausted and not self.exhausted:
            self.exhausted = True
            log.warning(
                "exp_gopt: %s; ending early with %d trials",
                describe_exhaustion(self.proposer.size),
                self.finished + len(self.pending) + len(points),
            )
        for point in points:
            trial = Trial(self.search.to_config(point), {"id": self.next_id, "run": 1})
            self.pending[self.next_id] = point
            self.next_id += 1
            trials.append(trial)
        return trials

    def requeue(self, trials: List[Trial]) -> None:
        """Points an earlier run launched but never finished: they run first, under their ids."""
        for trial in trials:
            self.proposer.remember(self.search.to_point(trial.params))
            self.next_id = max(self.next_id, trial.extra["id"] + 1)
        self.requeued += trials

    def tell(self, trial: Trial, outcome: Outcome) -> Outcome:
        point = self.pending.pop(trial.extra["id"], None) or self.search.to_point(trial.params)
        self.next_id = max(self.next_id, trial.extra["id"] + 1)
        self.finished += 1
        if not outcome.failed:
            try:  # a pruned trial's value is the number it reported, never a dict
                if outcome.pruned:
                    outcome.value = objective_of(outcome.value)
                else:
                    reading = self.objectives.read(outcome.value)
                    outcome.value = reading.values[0] if self.objectives.plain else reading
            except ValueError as error:
                outcome = outcome.fail(f"bad return value: {error}")
        self.n_failed += outcome.failed
        self.n_pruned += outcome.pruned
        self._learn(point, trial.params, None if outcome.failed else outcome.value, completed=not outcome.pruned)
        return outcome

    def row(self, trial: Trial, outcome: Outcome) -> Dict[str, Any]:
        value = None if outcome.failed else outcome.value
        reading = value if isinstance(value, Reading) or value is None else Reading([value], {}, True)
        return {**trial.params, ID: trial.extra["id"], RUN: trial.extra["run"], **self.objectives.cells(reading)}

    def solutions(self) -> List[Dict[str, Any]]:
        """The Pareto-optimal feasible trials (several objectives), in the order they ran."""
        feasible = [(params, reading) for params, reading in self.own_readings() if reading.feasible]
        if not feasible:
            return []
        front = non_dominated(self.objectives.signed([reading for _, reading in feasible]))
        return [{"params": params, "values": reading.values} for (params, reading), keep in zip(feasible, front) if keep]


def launcher_slots(config: Any) -> Optional[int]:
    """How many jobs a batch launcher runs at once, where its config says so (exp_local tells its own slots)."""
    for key in ("hydra.launcher.n_jobs", "hydra.launcher.array_parallelism"):
        value = OmegaConf.select(config, key, default=None)
        if isinstance(value, int) and not isinstance(value, bool):
            return os.cpu_count() or 1 if value < 0 else max(1, value)
    return None


class GoptSweep(SweepCore[ExpGoptConf, GoptStrategy]):
    kind = "exp_gopt"
    summary = SUMMARY
    schema = ExpGoptConf
    enumerable = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.n_jobs = 1  # trials in flight (or per batch), decided in prepare()
        self.asynchronous = False

    def check_options(self) -> None:
        super().check_options()
        o = self.options
        try:
            self.objectives = Objectives(self.directions, o.objective, parse_constraints(o.constraints))
        except ValueError as error:
            raise SweepError(f"{self.kind}: {error}") from None
        if self.objectives.constraints and o.acquisition is Acquisition.LCB:
            raise SweepError(
                f"{self.kind}: hydra.sweeper.acquisition=LCB with constraints: the acquisition is weighed by the probability "
                "of meeting them, which needs EI, PI or gp_hedge"
            )
        if isinstance(self.pruning, Pruning) and self.objectives.constraints:
            raise SweepError(
                f"{self.kind}: hydra.sweeper.pruner={self.pruning.kind} with constraints: a pruned trial reports no constraint "
                "metric, so whether it was feasible is unknown; drop one of the two"
            )

    def jobs(self) -> Optional[int]:
        return self.options.n_jobs or self.options.n_trials

    def settings(self) -> Dict[str, Any]:
        o = self.options
        return {
            "surrogate": o.surrogate.value,
            "acquisition": o.acquisition.value,
            "kappa": o.kappa,
            "xi": o.xi,
            "n_initial_points": o.n_initial_points,
            "direction": self.directions[0].value if len(self.directions) == 1 else [d.value for d in self.directions],
            "objective": o.objective,
            **({"pruned_value": o.pruned_value.value} if self.pruning.active else {}),
            # absent without constraints, so that sweeps saved before constraints existed still resume
            **({"constraints": [str(c) for c in self.objectives.constraints]} if self.objectives.constraints else {}),
        }

    def prepare(self, space: Space, state: SweepState) -> GoptStrategy:
        o = self.options
        try:
            search = space.require_params().search()
        except SpaceError as error:
            raise SweepError(f"{self.kind}: {error}") from None
        if not search.dimensions:
            raise SweepError(f"{self.kind}: every parameter has a single value: nothing to optimize")
        self.n_jobs = o.n_jobs or min(self.launcher_slots() or launcher_slots(self.config) or 1, o.n_trials)
        if o.n_jobs is None and self.n_jobs > o.n_initial_points:
            log.warning(
                "%s: n_jobs defaults to the launcher's %d slots, more than n_initial_points=%d: most trials "
                "will be proposed before any result is back (close to random search); set "
                "hydra.sweeper.n_jobs to the number of trials to run at once",
                self.kind,
                self.n_jobs,
                o.n_initial_points,
            )
        self.asynchronous = o.mode is Mode["async"] and self.async_launcher is not None
        if self.asynchronous:
            log.info("%s: keeping %d trials in flight (asynchronous launcher)", self.kind, self.n_jobs)
        elif o.mode is Mode["async"]:
            how = "one trial at a time" if self.n_jobs == 1 else f"batches of {self.n_jobs} trials, each waiting for its slowest"
            log.info(
                "%s: %s runs %s; hydra/launcher=exp_local hydra.sweeper.n_jobs=N runs N at once, each replaced as it ends",
                self.kind,
                type(self.launcher).__name__,
                how,
            )
        else:
            log.info("%s: mode=sync: batches of %d trials", self.kind, self.n_jobs)
        from hydra_plugins.exp_sweeper._proposer import Proposer

        proposer = Proposer(
            search.dimensions,
            o.surrogate.value,
            o.acquisition.value,
            o.kappa,
            o.xi,
            o.n_initial_points,
            seed=state.record["seed"],
            allow_repeats=o.allow_repeats,
        )
        clash = [name for name in self.objectives.columns if name in space.names]
        if clash:
            raise SweepError(f"{self.kind}: the objective and metric columns {clash} clash with parameters; rename them")
        strategy = GoptStrategy(
            search, proposer, o.n_trials, self.objectives, o.pruned_value, seed=state.record["seed"], scored=self.pruning.active
        )
        if o.warm_start:
            strategy.replay(self.warm_start_rows(o.warm_start, space, search), count=False)
        return strategy

    def results(self, space: Space) -> Tuple[str, List[str]]:
        return f"{self.options.name}_configurations.csv", [*space.names, ID, *self.objectives.columns, RUN, *BOOKKEEPING]

    def begin(self, strategy: GoptStrategy, store: ResultsStore) -> Progress:
        strategy.replay(store.rows, count=True)
        progress = Progress(
            self.kind,
            self.options.n_trials,
            self.options.progress,
            done=strategy.finished,
            failed=strategy.n_failed,
            pruned=strategy.n_pruned,
        )
        progress.best = strategy.best_value
        return progress

    def lanes(self) -> Tuple[int, bool]:
        return self.n_jobs, self.asynchronous

    def warm_start_rows(self, path: str, space: Space, search: SearchSpace) -> List[Dict[str, str]]:
        """The rows of ``warm_start`` that hold every parameter and the objectives (a file without a status
        column, made by hand or by another tool, holds completed trials); SweepError naming the file and the
        reason when none does. Before anything is written: a bad file leaves the sweep directory as it was."""
        cwd = OmegaConf.select(self.config, "hydra.runtime.cwd", default=None) or "."
        where = f"{self.kind}: hydra.sweeper.warm_start={path}"
        try:
            header, rows = read_table(Path(cwd, path), self.results(space)[1])
        except OSError as error:
            raise SweepError(f"{where}: {error.strerror}") from None
        except UnicodeDecodeError as error:
            raise SweepError(f"{where}: not a text file ({error.reason})") from None
        needed = [*search.names, *self.objectives.value_columns, *self.objectives.metric_names]
        missing = [column for column in needed if column not in header]
        if missing:
            raise SweepError(f"{where}: no column {', '.join(missing)} (its columns: {', '.join(header) or 'none'}): no row can be taken")
        taken: List[Dict[str, str]] = []
        skipped: "collections.Counter[str]" = collections.Counter()
        for row in rows:
            reason = self._unusable(row, search)
            if reason is None:
                taken.append({**row, STATUS: row.get(STATUS, Status.COMPLETED)})
            else:
                skipped[reason] += 1
        reasons = "; ".join(f"{n} {reason}" for reason, n in skipped.most_common())
        if not taken:
            raise SweepError(f"{where}: no row can be taken: {reasons or 'it has no rows'}")
        log.info(
            "%s: warm start from %s: %d rows taken, %d skipped%s",
            self.kind,
            path,
            len(taken),
            sum(skipped.values()),
            f" ({reasons})" if reasons else "",
        )
        return taken

    def _unusable(self, row: Dict[str, str], search: SearchSpace) -> Optional[str]:
        """Why a warm start cannot take this row (None: it can)."""
        status = row.get(STATUS, Status.COMPLETED)
        if status not in VALUED:
            return f"with status {status or 'empty'}"
        try:
            point_from_row(search, row)
        except ValueError:
            return "without a value in the space for every parameter"
        try:
            reading = self.objectives.from_row(row)
        except ValueError:
            reading = None
        finite = reading is not None and all(map(math.isfinite, [*reading.values, *reading.metrics.values()]))
        return None if finite else "without a number for every objective and constrained metric"

    def finish(self, strategy: GoptStrategy, store: ResultsStore) -> None:
        strategy.close()
        objectives = self.objectives
        found: Dict[str, Any] = (
            {"solutions": strategy.solutions()}
            if objectives.multi
            else {"best_params": strategy.best_params, "best_value": strategy.best_value}
        )
        counts = {"n_trials": strategy.finished, "n_failed": strategy.n_failed, "n_pruned": strategy.n_pruned}
        if objectives.constraints:
            counts["n_feasible"] = sum(reading.feasible for _, reading in strategy.own_readings())
        write_summary(self.sweep_dir / SUMMARY, {"name": self.options.name, **found, **counts})
        if objectives.multi:
            log.info("%s: %d Pareto-optimal trials (optimization_results.yaml lists them)", self.kind, len(found["solutions"]))
        elif strategy.best_value is not None:
            log.info("%s: best value %s with %s", self.kind, strategy.best_value, strategy.best_params)
        if objectives.constraints and not counts["n_feasible"]:
            log.warning("%s: no trial met the constraints (%s)", self.kind, ", ".join(map(str, objectives.constraints)))
        if self.options.plot:
            from hydra_plugins.exp_sweeper._plots import write_curves_plot, write_objectives_plots, write_plots

            if objectives.plain:
                write_plots(self.sweep_dir, self.options.name, strategy.proposer, strategy.told, strategy.sign)
            else:
                write_objectives_plots(self.sweep_dir, self.options.name, objectives, strategy.own_readings())
            if self.early is not None and (self.pruning.active or self.early.curves.path.exists()):
                write_curves_plot(self.sweep_dir, self.options.name, store.path)
