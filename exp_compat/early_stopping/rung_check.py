"""How early a sweep may cut, judged on learning curves it already has: ``exp-compat rungs CURVES.csv``.

A pruner keeps the trials that are best at a rung, which helps only if they are the ones that end best; how
early that holds depends on the task (curves cross: a large learning rate leads after one epoch and trails
at the end). This replays the sweep's own pruners over the whole curves of an earlier sweep (its
``<name>_curves.csv``: a sweep without a pruner has every trial's) in many random orders, one trial at a
time, and says for each ``min_resource`` what share of the steps it would have trained and how often it
would have kept the best trial to the end.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import random
import statistics
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from exp_compat.early_stopping.pruners import Pruner, make_pruner
from exp_compat.early_stopping.rungs import Rungs, reached
from exp_compat.errors import SpaceError
from exp_compat.files.columns import CURVES, JOB_NUM, STEP, VALUE, read_table

MIN_TRIALS = 3  # whole curves needed: over fewer, a replay tells nothing
KEEP_BEST = 0.9  # the suggestion: the cheapest setting that kept the best trial in this share of the orders


@dataclasses.dataclass(frozen=True)
class Curve:
    """One trial's reports, by growing step."""

    job: str
    steps: Tuple[float, ...]
    values: Tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class Replay:
    """What one pruner setting did over the orders."""

    pruner: str
    min_resource: Optional[float]
    rungs: str
    steps_share: float  # steps trained, as a share of training every trial to the end
    best_kept: float  # share of the orders in which a trial with the best final value ran to the end
    best_found: float  # median over the orders of the best final value among the trials that ran to the end


def read_curves(path: Path) -> List[Curve]:
    """The curves of a ``<name>_curves.csv`` (``exp.job_num``, ``exp.step``, ``exp.value``, then metrics; an earlier
    release's without ``exp.``), or SpaceError."""
    try:
        header, rows = read_table(path, CURVES)
    except FileNotFoundError:
        raise SpaceError("no such file (a sweep's <name>_curves.csv, in its sweep directory)", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpaceError(f"cannot read it: {error}", source=str(path)) from None
    missing = [column for column in CURVES if column not in header]
    if missing:
        raise SpaceError(f"not a curves file: no column {', '.join(missing)} (columns: {', '.join(header) or 'none'})", source=str(path))
    by_job: Dict[str, Dict[float, float]] = {}
    for number, row in enumerate(rows, start=2):
        try:
            step, value = float(row[STEP]), float(row[VALUE])
        except ValueError:
            raise SpaceError(
                f"line {number}: step and value must be numbers, got {row[STEP]!r}, {row[VALUE]!r}", source=str(path)
            ) from None
        by_job.setdefault(row[JOB_NUM], {}).setdefault(step, value)  # a requeued job's repeat: the first value stands
    return [Curve(job, tuple(sorted(points)), tuple(points[s] for s in sorted(points))) for job, points in by_job.items()]


def _until(curve: Curve, end: float) -> Optional[Curve]:
    """``curve`` up to step ``end``, where the trial is complete (reports after it left out); None when it did not
    get there, or diverged (NaN or inf) on the way."""
    last = bisect.bisect_right(curve.steps, end * (1 + 1e-12))
    if last == 0 or not reached(end, curve.steps[last - 1]):
        return None
    cut = Curve(curve.job, curve.steps[:last], curve.values[:last])
    return cut if all(map(math.isfinite, cut.values)) else None


def replay(curves: Sequence[Curve], build: Optional[Callable[[int], Pruner]], orders: int, sign: float) -> Tuple[float, float, float]:
    """Steps share, best kept and median best found of one setting (``build`` makes its pruner for an order's
    seed; None: no pruning)."""
    best = min(sign * c.values[-1] for c in curves)
    at_rungs: Dict[Tuple[str, str], List[Tuple[int, float, float]]] = {}
    spent, kept, found = [], 0, []
    for order in range(orders):
        rule = build(order) if build is not None else None
        steps = 0.0
        finals = []
        for curve in random.Random(order).sample(list(curves), len(curves)):
            stopped_at = _stopped_at(curve, rule, sign, at_rungs) if rule is not None else None
            steps += stopped_at if stopped_at is not None else curve.steps[-1]
            if stopped_at is None:
                finals.append(sign * curve.values[-1])
        spent.append(steps)
        kept += bool(finals) and math.isclose(min(finals), best, rel_tol=1e-12, abs_tol=0.0)
        found.append(sign * min(finals) if finals else math.nan)
    whole = sum(c.steps[-1] for c in curves)
    return statistics.mean(spent) / whole, kept / orders, statistics.median(found)


def _stopped_at(
    curve: Curve, rule: Pruner, sign: float, at_rungs: Dict[Tuple[str, str], List[Tuple[int, float, float]]]
) -> Optional[float]:
    """The step at which ``rule`` stops the trial, or None when it runs to the end."""
    for rung, step, value in _decided(curve, rule.rungs(curve.job), at_rungs):
        if not rule.decide(curve.job, rung, sign * value):
            return step
    return None


def _decided(curve: Curve, rungs: Rungs, cache: Dict[Tuple[str, str], List[Tuple[int, float, float]]]) -> List[Tuple[int, float, float]]:
    """The reports of ``curve`` at which a decision is due (rung, step, value), met as report() meets them in
    the job; worked out once per trial and rungs, whatever the order."""
    key = (curve.job, rungs.to_text())
    if key not in cache:
        decided, next_rung = [], 0
        for step, value in zip(curve.steps, curve.values):
            rung = rungs.crossed(step, next_rung)
            if rung is not None:
                decided.append((rung, step, value))
                next_rung = rung + 1
        cache[key] = decided
    return cache[key]


def check(path: Path, max_resource: Optional[float], reduction_factor: int, orders: int, maximize: bool) -> str:
    """Every setting's replay over the whole curves of ``path``, as a table; SpaceError when they cannot tell
    anything."""
    if reduction_factor < 2:
        raise SpaceError(f"--reduction-factor must be a whole number >= 2, got {reduction_factor}")
    if orders < 1:
        raise SpaceError(f"--orders must be at least 1, got {orders}")
    if max_resource is not None and not 0 < max_resource < math.inf:
        raise SpaceError(f"--max-resource must be a step > 0, got {max_resource:g}")
    curves = read_curves(path)
    if not curves:
        raise SpaceError("no reports in it", source=str(path))
    end = max_resource if max_resource is not None else max(c.steps[-1] for c in curves)
    whole = [cut for c in curves if (cut := _until(c, end)) is not None]
    if len(whole) < MIN_TRIALS:
        raise SpaceError(
            f"{len(whole)} of {len(curves)} trials reported up to step {end:g}; at least {MIN_TRIALS} whole curves are needed "
            "(a sweep without a pruner has them; with --max-resource, the step at which a trial is complete)",
            source=str(path),
        )
    sign = -1.0 if maximize else 1.0
    first_step = min(next((step for step in c.steps if step > 0), math.inf) for c in whole)  # rungs are at steps > 0
    if first_step == math.inf:
        raise SpaceError("no step is above 0: rungs are at steps > 0 (min_resource)", source=str(path))
    placed = Rungs(first_step, factor=float(reduction_factor), end=end)  # from the first step reported, up to 8
    candidates = [start for k in range(8) if (start := placed.at(k)) is not None]
    if not candidates:
        raise SpaceError(f"the curves start at step {first_step:g}: no rung fits before step {end:g}", source=str(path))

    def setting(kind: str, min_resource: float) -> Replay:
        def build(seed: int) -> Pruner:
            return make_pruner(kind, min_resource, end, reduction_factor, 0, 0.0, seed)

        rungs = build(0).bracket_rungs(0)
        steps = [f"{rungs.at(k):g}" for k in range(len(candidates) + 1) if rungs.at(k) is not None]
        share, kept, found = replay(whole, build, orders, sign)
        return Replay(kind, min_resource, ", ".join(steps) if kind == "asha" else "brackets from " + steps[0], share, kept, found)

    share, kept, found = replay(whole, None, orders, sign)
    results = [Replay("none", None, "-", share, kept, found)]
    results += [setting("asha", first) for first in sorted(candidates)]
    if len(candidates) > 1:
        results.append(setting("hyperband", min(candidates)))
    heading = (
        f"{path}: {len(whole)} of {len(curves)} trials reported up to step {end:g}; each setting replayed on their curves in "
        f"{orders} random orders, one trial at a time (reduction_factor={reduction_factor}, {'maximize' if maximize else 'minimize'})"
    )
    if len(whole) < len(curves):
        heading += (
            f"\nwarning: the other {len(curves) - len(whole)} stopped earlier (pruned, failed or diverged); if a pruner chose who ran "
            "to the end, these curves are its survivors and every setting will look safe: replay a sweep without a pruner"
        )
    return render(heading, results, len(whole))


def render(heading: str, results: List[Replay], n_whole: int) -> str:
    lines = [
        heading,
        "",
        "| pruner | min_resource | rungs | steps trained | best trial kept to the end | best final value found (median) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        first = f"{r.min_resource:g}" if r.min_resource is not None else "-"
        lines.append(f"| {r.pruner} | {first} | {r.rungs} | {r.steps_share:.0%} | {r.best_kept:.0%} | {r.best_found:.6g} |")
    fine = [r for r in results if r.pruner != "none" and r.best_kept >= KEEP_BEST]
    if fine:
        cheapest = min(fine, key=lambda r: r.steps_share)
        lines.append(
            f"\nsuggestion: pruner={cheapest.pruner} min_resource={cheapest.min_resource:g}: the cheapest setting that kept the best "
            f"trial in at least {KEEP_BEST:.0%} of the orders ({cheapest.steps_share:.0%} of the steps)"
        )
    else:
        surest = max((r for r in results if r.pruner != "none"), key=lambda r: (r.best_kept, -r.steps_share))
        lines.append(
            f"\nno setting kept the best trial in {KEEP_BEST:.0%} of the orders (the surest: pruner={surest.pruner} "
            f"min_resource={surest.min_resource:g}, {surest.best_kept:.0%} with {surest.steps_share:.0%} of the steps): on these "
            "curves early values do not rank trials as they end; cut late, or not at all"
        )
    lines.append(f"(measured on {n_whole} trials: a few more or fewer can move these shares; more trials, surer figures)")
    return "\n".join(lines)
