"""Convergence and objective plots (scikit-optimize's), drawn without a display."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Tuple

log = logging.getLogger("hydra_plugins.exp_sweeper")


def write_plots(sweep_dir: Path, name: str, proposer: Any, sign: float) -> None:
    """``<name>_convergence.png`` always; ``<name>_objective.png`` when a surrogate model was fitted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from skopt.plots import plot_convergence, plot_objective
    from skopt.utils import create_result

    if not proposer.y:
        log.warning("exp_gopt: no completed trial, no plots")
        return
    models = proposer.optimizer.models if proposer.optimizer is not None else []
    result = create_result(proposer.X, proposer.y, proposer.space, np.random.RandomState(0), models=models)
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

    from hydra_plugins.exp_sweeper._results import read_csv, read_results

    curves = sweep_dir / f"{name}_curves.csv"
    if not curves.exists():
        log.warning("exp: no trial reported a step (exp_compat.report): no learning-curve plot")
        return
    status = {row["job_num"]: row["status"] for row in read_results(results)[1]} if results.exists() else {}
    by_job: Dict[str, Tuple[List[float], List[float]]] = {}
    for row in read_csv(curves)[1]:
        steps, values = by_job.setdefault(row["job_num"], ([], []))
        steps.append(float(row["step"]))
        values.append(float(row["value"]))
    styles: Dict[str, Dict[str, Any]] = {
        "pruned": dict(color="0.6", linewidth=0.8, alpha=0.7),
        "failed": dict(color="tab:red", linewidth=0.8),
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
    axes.set_title(f"{name}: learning curves ({sum(s == 'pruned' for s in status.values())} pruned)")
    axes.legend()
    figure.savefig(sweep_dir / f"{name}_curves.png", dpi=100, bbox_inches="tight")
    plt.close(figure)
