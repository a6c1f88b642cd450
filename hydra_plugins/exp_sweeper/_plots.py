"""Convergence and objective plots (scikit-optimize's), drawn without a display."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

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
