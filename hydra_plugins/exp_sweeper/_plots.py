"""Convergence and objective plots (scikit-optimize's), drawn without a display."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

log = logging.getLogger("hydra_plugins.exp_sweeper")


def write_plots(sweep_dir: Path, name: str, proposer: Any, told: Sequence[float], sign: float) -> None:
    """``<name>_convergence.png`` always (of the values ``told``, signed to be minimised: the objective's, not
    the normal scores a pruned sweep's surrogate learns); ``<name>_objective.png`` when a surrogate model
    was fitted (its scale is the surrogate's)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from skopt.plots import plot_convergence, plot_objective
    from skopt.utils import create_result

    from hydra_plugins.exp_sweeper._skopt_internals import fitted_models

    if not told:
        log.warning("exp_gopt: no completed trial, no plots")
        return
    models = fitted_models(proposer.optimizer) if proposer.optimizer is not None else []
    result = create_result(proposer.X, list(told), proposer.space, np.random.RandomState(0), models=models)
    plot_convergence(result)
    if sign < 0:
        plt.gca().set_ylabel("-objective (maximized)")
    plt.savefig(sweep_dir / f"{name}_convergence.png", dpi=100, bbox_inches="tight")
    plt.close("all")
    if models:
        plot_objective(result)
        plt.savefig(sweep_dir / f"{name}_objective.png", dpi=100, bbox_inches="tight")
        plt.close("all")
    else:
        log.info("exp_gopt: no surrogate model (random search or too few trials): no objective plot")


def write_curves_plot(sweep_dir: Path, name: str, results: Path) -> None:
    """``<name>_curves.png``: every trial's reported values by step, completed trials in colour, pruned ones in
    grey, failed ones in red: where the pruner stopped trials, and what the survivors went on to reach."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from exp_compat.files.columns import CURVES, JOB_NUM, STATUS, STEP, VALUE, Status, read_table
    from hydra_plugins.exp_sweeper._results import read_results

    curves = sweep_dir / f"{name}_curves.csv"
    if not curves.exists():
        log.warning("exp: no trial reported a step (exp_compat.report): no learning-curve plot")
        return
    status = {row[JOB_NUM]: row[STATUS] for row in read_results(results, [JOB_NUM])[1]} if results.exists() else {}
    by_job: Dict[str, Tuple[List[float], List[float]]] = {}
    for row in read_table(curves, CURVES)[1]:
        steps, values = by_job.setdefault(row[JOB_NUM], ([], []))
        steps.append(float(row[STEP]))
        values.append(float(row[VALUE]))
    styles: Dict[str, Dict[str, Any]] = {
        Status.PRUNED: dict(color="0.6", linewidth=0.8, alpha=0.7),
        Status.FAILED: dict(color="tab:red", linewidth=0.8),
    }
    figure, axes = plt.subplots(figsize=(8, 5))
    labelled = set()
    for job, (steps, values) in by_job.items():
        kind = status.get(job, "running")
        style: Dict[str, Any] = styles.get(kind, dict(linewidth=1.2))
        axes.plot(steps, values, label=None if kind in labelled else kind, **style)
        if kind in styles:
            axes.plot(steps[-1:], values[-1:], marker="x", linestyle="none", color=style["color"])
        labelled.add(kind)
    axes.set_xlabel("step")
    axes.set_ylabel("reported value")
    axes.set_title(f"{name}: learning curves ({sum(s == Status.PRUNED for s in status.values())} pruned)")
    axes.legend()
    figure.savefig(sweep_dir / f"{name}_curves.png", dpi=100, bbox_inches="tight")
    plt.close(figure)


def write_objectives_plots(sweep_dir: Path, name: str, objectives: Any, readings: List[Tuple[Dict[str, Any], Any]]) -> None:
    """Several objectives or constraints: ``<name>_convergence.png`` shows the hypervolume of the feasible
    trials so far (several objectives; the reference point is the worst feasible value of each objective,
    plus a tenth of its range) or the best feasible value; with two objectives, ``<name>_pareto.png`` shows
    every trial and the Pareto front. A scalarisation's model is redrawn at each fit, so there is no
    objective plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from hydra_plugins.exp_sweeper._objectives import hypervolume, non_dominated

    feasible = [reading for _, reading in readings if reading.feasible]
    if not feasible:
        log.warning("exp_gopt: no feasible completed trial, no plots")
        return
    signed = objectives.signed(feasible)
    reference = signed.max(axis=0) + 0.1 * np.where(np.ptp(signed, axis=0) > 0, np.ptp(signed, axis=0), 1.0)
    curve, front = [], np.empty((0, len(reference)))  # the feasible trials' front so far: it alone has the volume
    for _, reading in readings:
        if reading.feasible:
            front = np.vstack([front, objectives.signed([reading])])
            front = front[non_dominated(front)]
        if not len(front):
            curve.append(np.nan)
        elif objectives.multi:
            curve.append(hypervolume(front, reference))
        else:
            curve.append(float(objectives.signs[0] * front[0, 0]))
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.plot(range(1, len(curve) + 1), curve, marker=".")
    axes.set_xlabel("completed trials")
    axes.set_ylabel("hypervolume of the feasible trials" if objectives.multi else "best feasible value")
    axes.set_title(f"{name}: convergence")
    figure.savefig(sweep_dir / f"{name}_convergence.png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    if len(objectives.directions) != 2:
        return
    labels = objectives.value_columns
    values = np.array([reading.values for _, reading in readings])
    feasible_mask = np.array([reading.feasible for _, reading in readings])
    front = np.array([reading.values for reading in feasible])[non_dominated(signed)]
    front = front[np.argsort(front[:, 0])]
    figure, axes = plt.subplots(figsize=(6, 5))
    axes.scatter(values[feasible_mask, 0], values[feasible_mask, 1], color="0.6", s=14, label="feasible")
    if not feasible_mask.all():
        axes.scatter(values[~feasible_mask, 0], values[~feasible_mask, 1], color="tab:red", marker="x", s=14, label="infeasible")
    axes.plot(front[:, 0], front[:, 1], color="tab:blue", marker="o", label=f"Pareto front ({len(front)})")
    axes.set_xlabel(f"{labels[0]} ({objectives.directions[0].value})")
    axes.set_ylabel(f"{labels[1]} ({objectives.directions[1].value})")
    axes.legend()
    figure.savefig(sweep_dir / f"{name}_pareto.png", dpi=100, bbox_inches="tight")
    plt.close(figure)
