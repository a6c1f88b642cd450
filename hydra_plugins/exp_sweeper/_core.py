"""The sweep loop shared by exp_grid and exp_gopt.

A sweep is a *strategy* (what to run next, what a result means) driven by
this loop: ask the strategy for trials, render each trial's overrides (in
``exp_compat.overrides``, the one renderer), hand them to the launcher, turn
each ``JobReturn`` into an outcome, tell the strategy, append the row to the
results CSV, report progress, apply the failure policy. The loop knows
nothing of which backend runs a job: it uses Hydra's ``Launcher.launch`` in
batches, which every launcher implements, or the asynchronous contract
(``_contract.AsyncLauncher``) where the launcher offers it.

``SweepCore.sweep`` owns the order of a sweep's steps (every input checked
before anything is written, the launcher started as soon as the sweep knows
how many jobs it can run); each sweeper supplies only the steps that differ.
"""

from __future__ import annotations

import abc
import collections
import concurrent.futures
import dataclasses
import itertools
import logging
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Any, Dict, Generic, List, Mapping, Optional, Protocol, Sequence, Tuple, Type, TypeVar

from hydra.core.utils import JobReturn
from hydra.errors import CompactHydraException
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from exp_compat import Space, SpaceError
from exp_compat.early_stopping.reporting import plain_step
from exp_compat.files.columns import DURATION_S, ERROR, JOB_NUM, STATUS, Status
from exp_compat.files.durable import remove_temporaries
from exp_compat.overrides import env_set_overrides, job_env_overrides, render_value
from exp_compat.plugin_options import typed_options
from exp_compat.space.hydra_syntax import merge, parse_overrides, parse_params_mapping
from exp_compat.space.parameters import Param
from hydra_plugins.exp_sweeper._contract import AsyncLauncher
from hydra_plugins.exp_sweeper._earlier import set_aside_sweep
from hydra_plugins.exp_sweeper._early_stopping import EarlyStopping
from hydra_plugins.exp_sweeper._options import check_ranges
from hydra_plugins.exp_sweeper._outcome import JOBS_DIR, Outcome, TimedTask, outcome_from_record, outcome_of, read_record
from hydra_plugins.exp_sweeper._progress import Progress, show_parameters_only
from hydra_plugins.exp_sweeper._pruning import NoPruning, pruning_policy
from hydra_plugins.exp_sweeper._results import LaunchJournal, ResultsStore, SweepLock, SweepState, next_job_num, set_aside
from hydra_plugins.exp_sweeper.config import Direction, ExpSweeperConf, OnFailure, OnInterrupt, direction_sign, parse_directions

log = logging.getLogger("hydra_plugins.exp_sweeper")

BOOKKEEPING = [JOB_NUM, STATUS, DURATION_S, ERROR]  # and the pruning policy's (_pruning.py)
KEPT_RETURNS = 100  # JobReturns that sweep() hands back to Hydra (see SweepCore.keep)
NAMED_FAILURES = 10  # failed jobs named in the last lines; the CSV has every one


class SweepError(CompactHydraException):
    """A sweep that cannot start or had to stop: Hydra prints the message alone, and exits 1."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, taken like Ctrl-C so that every phase of a sweep ends as cleanly (jobs cancelled, files closed)."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


def interrupted(interrupt: KeyboardInterrupt) -> str:
    return "terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "interrupted (Ctrl-C)"


@dataclasses.dataclass
class Trial:
    """One job to run: its parameters, and the extra keys it records and receives (id, run)."""

    params: Dict[str, Any]
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict)
    extra_overrides: List[str] = dataclasses.field(default_factory=list)
    job_num: int = -1


class Strategy(Protocol):
    """What a sweeper decides; the loop does the rest."""

    def ask(self, n: int) -> List[Trial]:
        """Up to ``n`` trials to run next; none when the sweep is complete."""

    def tell(self, trial: Trial, outcome: Outcome) -> Outcome:
        """Learn from a finished trial; may turn a completed job into a failed one (a bad return value)."""

    def row(self, trial: Trial, outcome: Outcome) -> Dict[str, Any]:
        """The CSV fields of a finished trial other than the bookkeeping columns."""

    def requeue(self, trials: List[Trial]) -> None:
        """Trials launched by an earlier run of this sweep that never finished: run them again."""

    def prepare(self) -> None:
        """Asynchronous mode, after launching: start working out the next trial while the jobs run."""

    def known_ahead(self) -> bool:
        """Whether the next trials are known now, whatever the running ones return: then the loop submits
        them early to a launcher that hands each slot its next job before the current one ends."""


ConfT = TypeVar("ConfT", bound=ExpSweeperConf)
StrategyT = TypeVar("StrategyT", bound=Strategy)


class SweepCore(abc.ABC, Generic[ConfT, StrategyT]):
    """Space loading, launching, recording and failure policy, common to both sweepers.

    ``sweep`` runs the steps in their one order; a sweeper supplies ``schema`` (its options), ``enumerable``
    (how sweep overrides parse), and the hooks below ``sweep``.
    """

    kind = "exp"
    summary: Optional[str] = None  # the file, beside the results, that names the best (exp_gopt)
    schema: Type[ConfT]
    enumerable: bool

    def __init__(self, options: Mapping[str, Any], *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig):
        from hydra.core.plugins import Plugins

        try:
            self.options: ConfT = typed_options(self.schema, options, "hydra.sweeper")
        except ValueError as error:
            raise SweepError(str(error)) from None
        self.config = config
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.launcher: Launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=TimedTask(task_function), config=config
        )
        show_parameters_only(self.launcher)
        # The asynchronous contract where the launcher offers it (the exp launchers); batches through
        # Launcher.launch otherwise.
        self.async_launcher: Optional[AsyncLauncher] = self.launcher if isinstance(self.launcher, AsyncLauncher) else None
        self.launcher_started = False
        self.keys: Dict[str, str] = {}
        # Each job's overrides follow this order: ("param", name) or ("raw", an override as typed).
        self.template: List[Tuple[str, str]] = []
        self.lock: Optional[SweepLock] = None
        self.journal: Optional[LaunchJournal] = None
        self.job_num = 0  # the next job's number, once the results are open
        self.failures: List[str] = []  # the first NAMED_FAILURES only: a sweep's memory must not grow per job
        self.n_failures = 0
        self.early: Optional[EarlyStopping] = None  # the jobs' reports, once the results are open
        self.directions = [Direction.minimize]  # hydra.sweeper.direction read (check_options)
        self.pruning = NoPruning()  # hydra.sweeper.pruner and its settings read (check_options)

    def sweep(self, arguments: List[str]) -> List[List[Any]]:
        """Every sweep's steps, in this order: every input is checked before the results are opened (a bad
        one writes nothing), and the launcher starts its slots as soon as the sweep knows how many jobs it
        can run, so that they start while the space, the grid or the optimizer still load."""
        self.check_options()
        self.start_launcher()
        space = self.load_space(arguments)
        state = self.load_state(space)
        strategy = self.prepare(space, state)
        self.start_launcher()
        store = self.open_store(*self.results(space))
        self.start_early_stopping(state.record["seed"])
        state.save()
        progress = self.begin(strategy, store)
        slots, asynchronous = self.lanes()
        return self.run(strategy, store, progress, slots, asynchronous)

    # -- what each sweeper supplies ---------------------------------------------------------------
    @abc.abstractmethod
    def jobs(self) -> Optional[int]:
        """How many jobs the sweep can run at most, as soon as it is known (None: not yet)."""

    @abc.abstractmethod
    def settings(self) -> Dict[str, Any]:
        """The options that a resumed sweep must share with the sweep it continues (besides the space)."""

    @abc.abstractmethod
    def prepare(self, space: Space, state: SweepState) -> StrategyT:
        """The sweep's strategy, and every check that is left: nothing is written before this returns."""

    @abc.abstractmethod
    def results(self, space: Space) -> Tuple[str, List[str]]:
        """The results CSV's file name and columns."""

    @abc.abstractmethod
    def begin(self, strategy: StrategyT, store: ResultsStore) -> Progress:
        """The strategy told what the results already hold (resume), and the sweep's progress."""

    @abc.abstractmethod
    def lanes(self) -> Tuple[int, bool]:
        """How many jobs to keep in flight (or per batch), and whether through the asynchronous contract."""

    def finish(self, strategy: StrategyT, store: ResultsStore) -> None:  # noqa: B027 - a hook: most sweeps write no summary
        """Summaries written once the loop ends, however it ends (overridden by exp_gopt)."""

    # -- input --------------------------------------------------------------------------------

    def run_sweep(self, arguments: List[str]) -> Any:
        """The sweeper's ``sweep``, ended cleanly by Ctrl-C or SIGTERM in any phase: one line, exit 1, files
        closed and temporary files removed; the directory is left to the next sweep."""
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminate) if main else None
        try:
            return self.sweep(arguments)
        except KeyboardInterrupt as interrupt:
            where = (
                (f"; finished jobs are in {self.sweep_dir}: continue with hydra.sweeper.resume=true hydra.sweep.dir={self.sweep_dir}")
                if self.lock is not None
                else " before any job ran"
            )
            raise SweepError(f"{self.kind}: {interrupted(interrupt)}{where}") from None
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)
            if self.lock is not None:
                self.lock.release()

    def check_options(self) -> None:
        """What the options' types cannot say (the types were checked as the options were read)."""
        o = self.options
        try:
            check_ranges(o)
            self.directions = parse_directions(o.direction)
            self.pruning = pruning_policy(o, self.directions)
        except ValueError as error:
            raise SweepError(f"{self.kind}: {error}") from None

    def start_early_stopping(self, seed: int) -> None:
        """Start reading what the jobs report, and with a pruner deciding at rungs (after the results are open:
        a new sweep has set the previous one's files aside)."""
        pruner = self.pruning.pruner(seed)
        sign = direction_sign(self.directions[0])
        end_job = self.async_launcher.end if self.async_launcher is not None else None
        self.early = EarlyStopping(pruner, sign, self.sweep_dir, self.options.name, self.options.resume, end_job)

    def params_file(self) -> Optional[Path]:
        """``hydra.sweeper.params_file`` or ``exp.params``, relative to the directory the user ran from."""
        from_sweeper = self.options.params_file
        from_app = OmegaConf.select(self.config, "exp.params", default=None)
        if from_sweeper and from_app and from_sweeper != from_app:
            raise SweepError(f"two space files given: hydra.sweeper.params_file={from_sweeper} and exp.params={from_app}; keep one")
        chosen = from_sweeper or from_app
        if not chosen:
            return None
        cwd = OmegaConf.select(self.config, "hydra.runtime.cwd", default=None) or "."
        return Path(cwd, str(chosen))

    def load_space(self, arguments: Sequence[str]) -> Space:
        """The space from the TOML file, ``hydra.sweeper.params`` and the command line (which wins)."""
        enumerable = self.enumerable
        layers: List[Sequence[Param]] = []
        path = self.params_file()
        try:
            if path is not None:
                from_file = Space.from_file(path).require_params().params
                layers.append(from_file)
                self.template += [("param", p.name) for p in from_file]
            parsed = [parse_overrides(arguments, enumerable=enumerable)]
            if self.options.params:
                parsed.insert(0, parse_params_mapping(self.options.params, enumerable=enumerable))
            from_file_names = {p.name for layer in layers for p in layer}
            for overrides in parsed:
                layers.append(overrides.params)
                # x=choice(...) re-defining the file's x: the file says x exists, so add it if the app lacks it.
                self.keys.update({n: f"++{n}" if n in from_file_names and k == n else k for n, k in overrides.keys.items()})
                self.template += overrides.order
            space = Space(merge(*layers), source=str(path) if path else None)
        except SpaceError as error:
            raise SweepError(f"{self.kind}: {error}") from None
        if not len(space):
            log.warning(
                "%s: no parameters to sweep over (give +exp.params=FILE, hydra.sweeper.params or "
                "sweep overrides such as x=choice(1,2)): running one job",
                self.kind,
            )
        for name in space.names:
            self.keys.setdefault(name, f"++{name}")
        self.template = list(dict.fromkeys(self.template))  # a parameter given twice is rendered once
        return space

    def overrides(self, trial: Trial) -> List[str]:
        """A job's overrides: parameters and pass-through overrides in the order given, then its extra keys,
        then its id and run in ``hydra.job.env_set`` (Hydra's config, not the app's)."""
        rendered = [f"{self.keys[item]}={render_value(trial.params[item])}" if kind == "param" else item for kind, item in self.template]
        reports = env_set_overrides(self.early.watch(trial.job_num, trial.extra)) if self.early is not None else []
        return [*rendered, *trial.extra_overrides, *job_env_overrides(trial.extra), *reports]

    # -- state on disk ------------------------------------------------------------------------
    def load_state(self, space: Space) -> SweepState:
        """The sweep's settings and seed: saved ones when resuming (checked against these), else these."""
        record = {"sweeper": self.kind, "space": space.to_mapping(), **self.settings(), "seed": self.options.seed}
        record.update(self.pruning.state())
        if record["seed"] is None:
            record["seed"] = secrets.randbelow(2**31)
        try:
            return SweepState.load(self.sweep_dir / f"{self.options.name}_sweep.json", record, self.options.resume)
        except ValueError as error:
            raise SweepError(f"{self.kind}: {error}") from None

    def open_store(self, filename: str, columns: Sequence[str]) -> ResultsStore:
        """The results CSV (new, or the one being resumed); call once every input has been checked."""
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        resume = self.options.resume
        try:
            self.lock = SweepLock(self.sweep_dir)
            remove_temporaries(self.sweep_dir)  # a killed sweep's half-written results: only the driver writes here
            if not resume:
                self.set_aside_earlier_sweep(filename)
            if resume and not (self.sweep_dir / filename).exists() and not (self.sweep_dir / JOBS_DIR).exists():
                log.warning("%s: hydra.sweeper.resume=true, but %s holds no sweep to resume: starting a new one", self.kind, self.sweep_dir)
            store = ResultsStore(self.sweep_dir / filename, self.pruning.columns(columns), resume=resume)
        except ValueError as error:
            raise SweepError(f"{self.kind}: {error}") from None
        if not resume and (self.sweep_dir / "multirun.yaml").exists():  # a sweep of another name ran here
            set_aside(self.sweep_dir / "multirun.yaml")
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")
        self.journal = LaunchJournal(self.sweep_dir / JOBS_DIR, resume=resume)
        launched = [*self.journal.earlier, *(e["job_num"] for e in self.journal.entries())]
        self.job_num = max([next_job_num(self.sweep_dir, store.rows), *(n + 1 for n in launched)])
        if store.rows:
            log.info(
                "%s: resuming in %s: %d finished jobs kept, continuing at job #%d", self.kind, self.sweep_dir, len(store.rows), self.job_num
            )
        return store

    def set_aside_earlier_sweep(self, filename: str) -> None:
        """An earlier sweep of this name, moved whole into one folder (see _earlier), or refused where its job
        directories cannot be told."""
        name = self.options.name
        if not any((self.sweep_dir / f).exists() for f in (filename, f"{name}_sweep.json")):
            return
        try:
            aside = set_aside_sweep(self.sweep_dir, name, JOBS_DIR, filename, [self.summary] if self.summary else [])
        except ValueError as reason:
            n = 2
            while Path(f"{self.sweep_dir}-{n}").exists():
                n += 1
            raise SweepError(
                f"{self.kind}: {self.sweep_dir} holds an earlier sweep named {name}, which cannot be set aside whole: {reason}; "
                f"nothing was changed. Continue it with hydra.sweeper.resume=true hydra.sweep.dir={self.sweep_dir}, "
                f"or start a new one elsewhere: hydra.sweep.dir={self.sweep_dir}-{n}"
            ) from None
        log.warning(
            "%s: %s held an earlier sweep named %s: set aside whole (its files and job directories) in %s; "
            "to continue a sweep instead, use hydra.sweeper.resume=true",
            self.kind,
            self.sweep_dir,
            name,
            aside,
        )

    # -- the loop -----------------------------------------------------------------------------
    def stop_reason(self, progress: Progress) -> Optional[str]:
        if not progress.failed:
            return None
        if self.options.on_failure is OnFailure["cancel"]:
            return "a job failed and hydra.sweeper.on_failure=cancel"
        rate = progress.failed / progress.done
        if rate > self.options.max_failure_rate:
            return f"{progress.failed} of {progress.done} jobs failed, more than max_failure_rate={self.options.max_failure_rate}"
        return None

    def recover(self, strategy: Strategy, store: ResultsStore, progress: Progress, journal: LaunchJournal) -> None:
        """After a kill: record the jobs that finished unrecorded (mid-batch), requeue those that never finished."""
        recorded = {int(row[JOB_NUM]) for row in store.rows}
        unfinished = []
        for entry in journal.entries():
            if entry["job_num"] in recorded:
                continue
            trial = Trial(entry["params"], entry["extra"], job_num=entry["job_num"])
            outcome = outcome_from_record(read_record(self.sweep_dir, entry["job_num"]) or {})
            if outcome is None:
                unfinished.append(trial)
                if self.early is not None:
                    self.early.forget(trial.job_num, trial.extra)
            else:
                if self.early is not None:
                    self.early.catch_up(trial.job_num, trial.extra)
                self.record(strategy, trial, outcome, store, progress)
        strategy.requeue(unfinished)

    def start_launcher(self) -> None:
        """Let a launcher start its workers once the sweep knows how many jobs it can run, while the sweep
        still loads (its libraries take seconds; so does an app that imports torch in each worker): no more
        workers than those jobs."""
        jobs = self.jobs()
        if self.async_launcher is not None and not self.launcher_started and jobs is not None:
            self.async_launcher.start(max_jobs=jobs)
            self.launcher_started = True

    def launcher_slots(self) -> Optional[int]:
        return self.async_launcher.slots if self.async_launcher is not None else None

    def run(self, strategy: StrategyT, store: ResultsStore, progress: Progress, batch_size: int, asynchronous: bool) -> List[List[Any]]:
        """Run trials until the strategy has none left or the failure policy (or Ctrl-C) stops the sweep.

        Asynchronous: keep ``batch_size`` jobs in flight, each finished job recorded and replaced at
        once. Otherwise: batches through ``Launcher.launch``, which every launcher implements.
        """
        returns: List[List[Any]] = []
        stop: Optional[str] = None
        journal = self.journal
        assert journal is not None, "open_store() first"
        try:
            if self.async_launcher is not None:  # before reading what finished: jobs a killed run left must not finish later
                self.async_launcher.end_earlier_jobs()
            self.recover(strategy, store, progress, journal)
            stop = self.stop_reason(progress)
            if stop is None:
                loop = self._steady if asynchronous else self._batches
                stop = loop(strategy, store, progress, batch_size, returns)
        finally:
            progress.close()
            store.close()
            journal.close()
            if self.early is not None:
                self.early.close()
            self.finish(strategy, store)
        self.report(progress, store, stop)
        return returns

    @staticmethod
    def keep(returns: List[List[Any]], batch: Sequence[Any]) -> None:
        """Keep the first ``KEPT_RETURNS`` jobs' JobReturns, in their batches, for ``sweep()`` to return.

        Hydra's multirun ignores what a sweeper returns, but its test utilities (and its launcher and
        sweeper test suites) read it. A JobReturn holds its job's config and Hydra config, about 0.1 MB:
        keeping every one made the driver grow with each finished job. The results CSV has every job.
        """
        room = KEPT_RETURNS - sum(len(kept) for kept in returns)
        if room > 0:
            returns.append(list(batch)[:room])

    def _numbered(self, trials: List[Trial]) -> List[Trial]:
        """Give trials their job numbers and journal them, before any of them is launched."""
        assert self.journal is not None, "open_store() first"
        for trial in trials:
            trial.job_num, self.job_num = self.job_num, self.job_num + 1
        self.journal.append({"job_num": t.job_num, "params": t.params, "extra": t.extra} for t in trials)
        return trials

    def _report_waits(self, waits: "collections.Counter[int]") -> None:
        if waits:
            ordered = sorted(waits)
            middle = sum(waits.values()) // 2
            median = next(ms for ms, seen in zip(ordered, itertools.accumulate(waits[ms] for ms in ordered)) if seen > middle)
            log.info("%s: a freed slot waited %.3f s (median), %.3f s (max) for its next job", self.kind, median / 1000, ordered[-1] / 1000)

    def _batches(self, strategy: Strategy, store: ResultsStore, progress: Progress, size: int, returns: List[List[Any]]) -> Optional[str]:
        while True:
            trials = self._numbered(strategy.ask(size))
            if not trials:
                return None
            try:
                batch = self.launcher.launch([self.overrides(t) for t in trials], initial_job_idx=trials[0].job_num)
            except KeyboardInterrupt as interrupt:
                return interrupted(interrupt)
            self.keep(returns, batch)
            for trial, job_return in zip(trials, batch):
                self.record(strategy, trial, outcome_of(job_return, self.sweep_dir), store, progress)
            del batch  # this chunk's JobReturns are recorded: free them before the next chunk runs
            stop = self.stop_reason(progress)
            if stop is not None:
                return stop

    def _steady(self, strategy: Strategy, store: ResultsStore, progress: Progress, slots: int, returns: List[List[Any]]) -> Optional[str]:
        launcher = self.async_launcher
        assert launcher is not None, "asynchronous mode needs an AsyncLauncher"
        in_flight: Dict["concurrent.futures.Future[JobReturn]", Trial] = {}
        stop: Optional[str] = None
        freed_at: Optional[float] = None
        # How long freed slots waited for their next job (recording + proposing), counted per millisecond,
        # not kept per job: a sweep's memory must not grow with each finished job.
        waits: "collections.Counter[int]" = collections.Counter()
        try:
            while True:
                wanted = slots + (launcher.ahead if strategy.known_ahead() else 0)
                if stop is None and len(in_flight) < wanted:
                    for trial in self._numbered(strategy.ask(wanted - len(in_flight))):
                        in_flight[launcher.submit(self.overrides(trial), trial.job_num)] = trial
                        if freed_at is not None:
                            waits[round(1000 * (time.monotonic() - freed_at))] += 1
                    strategy.prepare()
                if not in_flight:
                    self._report_waits(waits)
                    return stop
                finished, _ = concurrent.futures.wait(in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
                freed_at = time.monotonic()
                for future in finished:
                    trial = in_flight.pop(future)
                    self.keep(returns, [future.result()])
                    self.record(strategy, trial, outcome_of(future.result(), self.sweep_dir), store, progress)
                stop = stop or self.stop_reason(progress)  # stop launching; running jobs still finish
                if stop is not None:
                    self._withdraw(in_flight)
        except KeyboardInterrupt as interrupt:
            if self.options.on_interrupt is OnInterrupt.wait and in_flight:
                self._withdraw(in_flight)
                log.warning("%s: interrupted: waiting for %d running jobs (Ctrl-C again to stop them)", self.kind, len(in_flight))
                try:
                    for future, trial in list(in_flight.items()):
                        self.record(strategy, trial, outcome_of(future.result(), self.sweep_dir), store, progress)
                        del in_flight[future]
                except KeyboardInterrupt:
                    pass
            launcher.shutdown(cancel=True)  # unfinished jobs run again on resume
            return interrupted(interrupt)

    @staticmethod
    def _withdraw(in_flight: Dict["concurrent.futures.Future[JobReturn]", Trial]) -> None:
        """Cancel the jobs submitted ahead that have not started (they run on resume); running ones go on."""
        for future in [f for f in in_flight if f.cancel()]:
            del in_flight[future]

    def record(self, strategy: Strategy, trial: Trial, outcome: Outcome, store: ResultsStore, progress: Progress) -> None:
        if self.early is not None:
            outcome = self.with_reports(trial, outcome)
        outcome = strategy.tell(trial, outcome)
        row = strategy.row(trial, outcome)
        row.update({JOB_NUM: trial.job_num, STATUS: outcome.status, DURATION_S: outcome.duration_s, ERROR: outcome.error})
        row.update(self.pruning.row(outcome))
        store.append(row)
        if self.early is not None:
            self.early.forget(trial.job_num, trial.extra)
        if outcome.failed:
            self.n_failures += 1
            if len(self.failures) < NAMED_FAILURES:
                where = (
                    f"; log: {outcome.log_path}" if outcome.log_path else f"; output: {outcome.output_dir}" if outcome.output_dir else ""
                )
                self.failures.append(f"#{trial.job_num} {outcome.error}{where}")
        progress.finished(trial.job_num, trial.params, outcome, best=getattr(strategy, "best_value", None))

    def with_reports(self, trial: Trial, outcome: Outcome) -> Outcome:
        """What the job reported, read to its last line: its number of steps, and its last value as the result
        of a job that returned none. A trial the pruner stopped is pruned, at the step and value it was stopped
        at, whatever its job then returned or raised."""
        assert self.early is not None
        watched = self.early.finished(trial.job_num)
        stop = self.early.stopped(trial.extra)
        if stop is not None:
            if not outcome.pruned:
                log.warning(
                    "%s: job #%d %s after the pruner stopped it at step %s: recorded as pruned (let exp_compat.Pruned propagate)",
                    self.kind,
                    trial.job_num,
                    f"failed ({outcome.error})" if outcome.failed else "returned a result",
                    stop.step,
                )
            return dataclasses.replace(outcome, status=Status.PRUNED, value=stop.value, steps=stop.step, error="")
        if watched is None or watched.step is None:
            self.pruning.unjudged(self.kind, trial.job_num, outcome)
            return outcome
        steps = outcome.steps if outcome.steps is not None else plain_step(watched.step)
        value = watched.value if outcome.value is None and not outcome.failed else outcome.value
        return dataclasses.replace(outcome, steps=steps, value=value)

    def report(self, progress: Progress, store: ResultsStore, stop: Optional[str]) -> None:
        completed = progress.done - progress.failed - progress.pruned
        pruned = f"{progress.pruned} pruned, " if self.pruning.active or progress.pruned else ""
        log.info(
            "%s: %d jobs finished: %d completed, %s%d failed; results: %s%s",
            self.kind,
            progress.done,
            completed,
            pruned,
            progress.failed,
            store.path,
            f"; best: {self.sweep_dir / self.summary}" if self.summary else "",
        )
        if self.early is not None:
            self.pruning.after(self.kind, self.early.curves.path)
        for failure in self.failures:
            log.error("%s: failed job %s", self.kind, failure)
        if self.n_failures > len(self.failures):
            log.error("%s: ... and %d more failed jobs (see %s)", self.kind, self.n_failures - len(self.failures), store.path)
        if stop is not None:
            raise SweepError(
                f"{self.kind}: stopped: {stop}. Finished jobs are in {store.path}; "
                f"continue with hydra.sweeper.resume=true hydra.sweep.dir={self.sweep_dir}"
            )
        if progress.done and progress.failed == progress.done:
            raise SweepError(f"{self.kind}: every job failed; see {store.path} and the logs above")
        if progress.done and not completed:
            raise SweepError(
                f"{self.kind}: no job completed ({progress.pruned} pruned, {progress.failed} failed); see {store.path} and the logs above"
            )
