"""Early stopping on a real training workload: best final validation error against epochs consumed.

Two workloads (``--workload``), each on the digits data, one ``partial_fit`` per epoch, up to 27 epochs,
validation error (1 - accuracy on a fixed held-out quarter, 450 images) reported after each epoch:

- ``mlp`` (default): scikit-learn's ``MLPClassifier``; ``lr`` (log-uniform 1e-4..1), ``alpha`` (log-uniform
  1e-6..0.1), ``hidden`` (8..256 units). Which of its good configurations ends best depends on the model's
  initial weights as much as on them (``early_stopping_rungs.py`` trains them again with other seeds);
- ``sgd``: scikit-learn's ``SGDClassifier`` (logistic regression, learning rate ``eta0 / t**power_t``);
  ``eta0`` (log-uniform 1e-4..1), ``alpha`` (log-uniform 1e-7..0.1), ``power_t`` (0.05..0.8). A convex
  problem: its good configurations rank much the same whatever the seed.

The model's own seed is fixed, so a configuration always gives the same curve.

Methods, each run with ``--seeds`` sweep seeds and two trials at a time:

- exp_gopt without pruning: ``--trials`` trials of 27 epochs; its epochs are the budget B of every method;
- exp_gopt + ASHA (``pruner=asha``, rungs at 1, 3, 9), once per ``pruned_value`` (what the GP is told of a
  pruned trial: ``last``, ``capped``, ``ignore``);
- exp_gopt + Hyperband (``pruner=hyperband``, brackets with first rungs at 1, 3, 9 and 27);
  ``--min-resource N`` moves every pruner's first rung (exp's, Optuna's, Ray's) to epoch N;
- exp_grid + ASHA over a 5 x 3 x 3 grid (45 configurations);
- Optuna (its own study loop, ``n_jobs=2``): TPE with its ``SuccessiveHalvingPruner``, and with its
  ``HyperbandPruner`` (min 1, max 27, factor 3); skipped if Optuna is not installed;
- Ray Tune's ``ASHAScheduler`` (grace period 1, factor 3, its default random search, 2 trials at a time);
  skipped if Ray is not installed.

Every trial logs each epoch it trains (time, trial, epoch, error), so every method is measured the same way:
epochs are counted in the order they were trained, and a method's best at budget b is the best final (27th
epoch) error among the trials that completed within the first b epochs. Pruning methods get more trials than
B / 27 and are cut at B. Printed: the median over seeds of the best final error at 25%, 50% and 100% of B,
the median epochs each method needed to reach the no-pruning run's final best (same seed), the median
wall-clock to spend B, and an anytime curve (``--plot FILE``).

    pip install -e ".[bench]" optuna "ray[tune]"
    python benchmarks/early_stopping.py [--workload mlp|sgd] [--seeds 5] [--trials 30] [--min-resource 1] [--plot curve.png]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

EPOCHS = 27
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Param:
    """One hyper-parameter, as every method's space spells it."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def draw(self, rng: random.Random) -> float:
        if self.integer:
            return rng.randint(int(self.low), int(self.high))
        if self.log:
            return 10 ** rng.uniform(math.log10(self.low), math.log10(self.high))
        return rng.uniform(self.low, self.high)

    def override(self) -> str:
        """exp_gopt's sweep override."""
        if self.integer:
            return f"+{self.name}=int(interval({int(self.low)},{int(self.high)}))"
        interval = f"interval({self.low!r},{self.high!r})"
        return f"+{self.name}=tag(log,{interval})" if self.log else f"+{self.name}={interval}"

    def suggest(self, trial: Any) -> float:
        """Optuna's draw, in an Optuna trial."""
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def domain(self, tune: Any) -> Any:
        """Ray Tune's search domain."""
        if self.integer:
            return tune.randint(int(self.low), int(self.high) + 1)
        return (tune.loguniform if self.log else tune.uniform)(self.low, self.high)


@dataclass(frozen=True)
class Workload:
    """A model trained one ``partial_fit`` per epoch, its space, and exp_grid's 45-point grid over it."""

    name: str
    params: Tuple[Param, ...]
    grid: Tuple[str, ...]
    model: Callable[[Dict[str, Any], int], Any]  # (hyper-parameters, the model's seed) -> an estimator with partial_fit

    def space(self) -> List[str]:
        return [p.override() for p in self.params]

    def draw(self, rng: random.Random) -> Dict[str, float]:
        return {p.name: p.draw(rng) for p in self.params}

    def suggest(self, trial: Any) -> Dict[str, float]:
        return {p.name: p.suggest(trial) for p in self.params}


def mlp(params: Dict[str, Any], seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=(int(params["hidden"]),),
        learning_rate_init=float(params["lr"]),
        alpha=float(params["alpha"]),
        batch_size=64,
        random_state=seed,
    )


def sgd(params: Dict[str, Any], seed: int) -> Any:
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(
        loss="log_loss",
        learning_rate="invscaling",
        eta0=float(params["eta0"]),
        alpha=float(params["alpha"]),
        power_t=float(params["power_t"]),
        random_state=seed,
    )


WORKLOADS = {
    w.name: w
    for w in (
        Workload(
            "mlp",
            (Param("lr", 1e-4, 1.0, log=True), Param("alpha", 1e-6, 0.1, log=True), Param("hidden", 8, 256, integer=True)),
            ("+lr=0.0001,0.001,0.01,0.1,1.0", "+alpha=0.000001,0.001,0.1", "+hidden=8,64,256"),
            mlp,
        ),
        Workload(
            "sgd",
            (Param("eta0", 1e-4, 1.0, log=True), Param("alpha", 1e-7, 0.1, log=True), Param("power_t", 0.05, 0.8)),
            ("+eta0=0.0001,0.001,0.01,0.1,1.0", "+alpha=0.0000001,0.0001,0.1", "+power_t=0.05,0.4,0.8"),
            sgd,
        ),
    )
}


def app(workload: Workload) -> str:
    """The Hydra app of exp's sweeps: trains ``workload`` with the configuration's hyper-parameters."""
    names = [p.name for p in workload.params]
    return textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import hydra
        from exp_compat import report
        from early_stopping import WORKLOADS, train

        @hydra.main(version_base=None, config_path=None, config_name=None)
        def main(cfg):
            params = {{name: cfg[name] for name in {names!r}}}
            return train(WORKLOADS[{workload.name!r}], params, cfg.log, report)

        main()
    """)


_data: Dict[str, Any] = {}
_lock = threading.Lock()


def digits() -> Dict[str, Any]:
    with _lock:
        if not _data:
            from sklearn.datasets import load_digits
            from sklearn.model_selection import train_test_split

            x, y = load_digits(return_X_y=True)
            x_train, x_val, y_train, y_val = train_test_split(x / 16.0, y, test_size=0.25, random_state=0, stratify=y)
            _data.update(x_train=x_train, x_val=x_val, y_train=y_train, y_val=y_val)
    return _data


def errors(workload: Workload, params: Dict[str, Any], seed: int = 0) -> Iterator[float]:
    """The workload's learning curve: the validation error after each epoch, one epoch trained per item
    (``seed``: the model's own, fixed in every method)."""
    import warnings

    import numpy as np

    data = digits()
    model = workload.model(params, seed)
    for _ in range(EPOCHS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.partial_fit(data["x_train"], data["y_train"], classes=np.arange(10))
        yield float(1.0 - model.score(data["x_val"], data["y_val"]))


def train(workload: Workload, params: Dict[str, Any], log: str, report: Callable[..., Any]) -> float:
    """The workload (run inside every method's trials): train epoch by epoch, log and report each epoch."""
    import os

    trial = f"{os.getpid()}-{time.time_ns()}-{threading.get_ident()}"
    error = 1.0
    for epoch, error in enumerate(errors(workload, params), start=1):
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"t": time.time(), "trial": trial, "epoch": epoch, "error": error}) + "\n")
        report(epoch, error)
    return error


# -- methods -----------------------------------------------------------------------------------------------


def spent(log: Path) -> int:
    """Epochs trained so far (one log line each)."""
    try:
        with open(log, "rb") as handle:
            return sum(1 for _ in handle)
    except FileNotFoundError:
        return 0


def exp_sweep(workdir: Path, log: Path, seed: int, budget: int, overrides: List[str]) -> None:
    """A sweep, stopped with Ctrl-C (as a user with a budget would) once it has trained the budget's epochs."""
    sweep = subprocess.Popen(
        [
            sys.executable,
            "app.py",
            "-m",
            "hydra/launcher=exp_local",
            "hydra.launcher.workers=2",
            f"hydra.sweeper.seed={seed}",
            f"+log={log}",
            *overrides,
            f"hydra.sweep.dir={workdir / ('sweep-' + log.stem)}",
        ],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    while sweep.poll() is None and spent(log) < budget:
        time.sleep(0.1)
    if sweep.poll() is None:
        sweep.send_signal(signal.SIGINT)
    _, errors = sweep.communicate()
    if sweep.returncode != 0 and spent(log) < budget:
        raise RuntimeError(f"the sweep failed: {errors[-2000:]}")


def first_rung(text: str) -> int:
    """``--min-resource``: the epoch from which every pruner may stop a trial, before the last one."""
    value = int(text)
    if not 1 <= value < EPOCHS:
        raise argparse.ArgumentTypeError(f"must be an epoch from 1 to {EPOCHS - 1}, got {text}")
    return value


def pruning(kind: str, min_resource: int) -> List[str]:
    """The sweep overrides of exp's ``kind`` pruner (asha or hyperband), as both benchmarks set it."""
    return [f"hydra.sweeper.pruner={kind}", f"hydra.sweeper.min_resource={min_resource}", f"hydra.sweeper.max_resource={EPOCHS}"]


def tpe_study(seed: int, hyperband: bool, min_resource: int) -> Any:
    """Optuna's TPE with its Hyperband or successive-halving pruner, as both benchmarks run it."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if hyperband:
        pruner: Any = optuna.pruners.HyperbandPruner(min_resource=min_resource, max_resource=EPOCHS, reduction_factor=3)
    else:
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=min_resource, reduction_factor=3)
    # named: Optuna's Hyperband draws a trial's bracket from the study's name, otherwise a random one
    return optuna.create_study(study_name=f"early-stopping-{seed}", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)


def optuna_study(workload: Workload, log: Path, seed: int, pruner_name: str, budget: int, min_resource: int) -> None:
    import optuna

    study = tpe_study(seed, pruner_name == "hyperband", min_resource)
    spent = [0]

    def objective(trial: Any) -> float:
        params = workload.suggest(trial)

        def report(epoch: int, error: float) -> None:
            spent[0] += 1
            trial.report(error, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        return train(workload, params, str(log), report)

    def enough(study: Any, trial: Any) -> None:
        if spent[0] >= budget:
            study.stop()

    study.optimize(objective, n_trials=10 * budget // EPOCHS, n_jobs=2, callbacks=[enough])


def ray_tune(workload: Workload, workdir: Path, log: Path, seed: int, budget: int, min_resource: int) -> None:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    class Budget(tune.Stopper):
        def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
            return False

        def stop_all(self) -> bool:
            return spent(log) >= budget

    name = workload.name  # the trial's process finds the workload by name: this module is __main__ here

    def trainable(config: Dict[str, Any]) -> None:
        sys.path.insert(0, str(HERE))
        from early_stopping import WORKLOADS
        from early_stopping import train as train_here

        train_here(WORKLOADS[name], config, str(log), lambda epoch, error: tune.report({"error": error}))

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        scheduler = ASHAScheduler(metric="error", mode="min", max_t=EPOCHS, grace_period=min_resource, reduction_factor=3)
        space = {p.name: p.domain(tune) for p in workload.params}
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space=space,
            tune_config=tune.TuneConfig(
                scheduler=scheduler, num_samples=budget // 3, max_concurrent_trials=2, search_alg=BasicVariantGenerator(random_state=seed)
            ),
            run_config=tune.RunConfig(storage_path=str(workdir / "ray"), name=log.stem, verbose=0, stop=Budget()),
        )
        tuner.fit()
    finally:
        ray.shutdown()


def only(methods: Dict[str, Any], parts: List[str]) -> Dict[str, Any]:
    """The methods whose names contain one of ``parts`` (all without any), and always the first: no pruning,
    whose final best is the target."""
    return {n: m for i, (n, m) in enumerate(methods.items()) if i == 0 or not parts or any(part in n for part in parts)}


# -- measuring ---------------------------------------------------------------------------------------------


def epochs_of(log: Path) -> List[dict]:
    return sorted((json.loads(line) for line in log.read_text().splitlines()), key=lambda e: e["t"])


def best_at(epochs: List[dict], budgets: List[int]) -> List[Optional[float]]:
    """The best final error among trials completed within the first b epochs, for each budget b."""
    found, best, spent = [], None, 0
    marks = iter(sorted(budgets))
    mark = next(marks, None)
    for entry in epochs:
        spent += 1
        while mark is not None and spent > mark:
            found.append(best)
            mark = next(marks, None)
        if entry["epoch"] == EPOCHS and (best is None or entry["error"] < best):
            best = entry["error"]
    while mark is not None:
        found.append(best)
        mark = next(marks, None)
    return found


def epochs_to_reach(epochs: List[dict], target: float) -> Optional[int]:
    for spent, entry in enumerate(epochs, start=1):
        if entry["epoch"] == EPOCHS and entry["error"] <= target:
            return spent
    return None


def wall_to_spend(epochs: List[dict], budget: int, started: float) -> float:
    return epochs[min(budget, len(epochs)) - 1]["t"] - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=30, help="trials of the no-pruning run (its epochs are the budget)")
    parser.add_argument("--plot", help="write the anytime curves (median over seeds) to this PNG")
    parser.add_argument("--no-ray", action="store_true", help="leave Ray Tune out even if it is installed")
    parser.add_argument("--only", nargs="+", default=[], help="run only the methods whose names contain one of these (and no pruning)")
    parser.add_argument("--min-resource", type=first_rung, default=1, help="the first rung of every pruner (Ray's grace period)")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="mlp", help="the model trained (module docstring)")
    args = parser.parse_args()
    workload = WORKLOADS[args.workload]
    gopt = ["hydra/sweeper=exp_gopt", *workload.space()]
    budget = args.trials * EPOCHS
    first = args.min_resource
    pruned_trials = 6 * args.trials  # enough for a pruning method to spend the budget; cut at it
    methods: Dict[str, Callable[[Path, Path, int], None]] = {
        "exp_gopt, no pruning": lambda w, log, s: exp_sweep(w, log, s, budget, [*gopt, f"hydra.sweeper.n_trials={args.trials}"]),
    }
    for policy in ("last", "capped", "ignore"):
        methods[f"exp_gopt + ASHA (pruned_value={policy})"] = lambda w, log, s, p=policy: exp_sweep(
            w,
            log,
            s,
            budget,
            [
                *gopt,
                *pruning("asha", first),
                f"hydra.sweeper.n_trials={pruned_trials}",
                f"hydra.sweeper.pruned_value={p}",
            ],
        )
    methods["exp_gopt + Hyperband"] = lambda w, log, s: exp_sweep(
        w,
        log,
        s,
        budget,
        [*gopt, *pruning("hyperband", first), f"hydra.sweeper.n_trials={pruned_trials}"],
    )
    methods["exp_grid + ASHA (45 configurations)"] = lambda w, log, s: exp_sweep(
        w, log, s, budget, ["hydra/sweeper=exp_grid", *workload.grid, *pruning("asha", first)]
    )
    if importlib.util.find_spec("optuna") is not None:
        methods["Optuna TPE + SuccessiveHalvingPruner"] = lambda w, log, s: optuna_study(workload, log, s, "asha", budget, first)
        methods["Optuna TPE + HyperbandPruner"] = lambda w, log, s: optuna_study(workload, log, s, "hyperband", budget, first)
    else:
        print("optuna is not installed: its rows are skipped (pip install optuna)", file=sys.stderr)
    if importlib.util.find_spec("ray") is not None and not args.no_ray:
        methods["Ray Tune ASHAScheduler (random search)"] = lambda w, log, s: ray_tune(workload, w, log, s, budget, first)
    methods = only(methods, args.only)
    marks = [budget // 4, budget // 2, budget]
    curve_marks = [budget * k // 20 for k in range(1, 21)]
    results: Dict[str, Dict[str, List[Any]]] = {name: {"at": [], "reach": [], "wall": [], "curve": []} for name in methods}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "app.py").write_text(app(workload))
        for seed in range(args.seeds):
            target = None
            for name, method in methods.items():
                log = workdir / f"{list(methods).index(name)}-{seed}.jsonl"
                started = time.time()
                method(workdir, log, seed)
                epochs = epochs_of(log)[:budget]
                if target is None:  # the no-pruning run comes first: its final best is the target
                    target = best_at(epochs, [budget])[0]
                result = results[name]
                result["at"].append(best_at(epochs, marks))
                result["reach"].append(epochs_to_reach(epochs, target) if target is not None else None)
                result["wall"].append(wall_to_spend(epochs, budget, started))
                result["curve"].append(best_at(epochs, curve_marks))
                print(f"seed {seed}: {name}: {result['at'][-1]}, reached {result['reach'][-1]}", file=sys.stderr, flush=True)
    setting = f"{workload.name} workload, median over {args.seeds} seeds, 2 trials at a time, min_resource={first}"
    print(f"budget B = {budget} epochs ({args.trials} trials x {EPOCHS}), {setting}\n")
    print("| method | best error at B/4 | at B/2 | at B | epochs to reach the no-pruning best | wall-clock to spend B |")
    print("|---|---|---|---|---|---|")
    for name, result in results.items():
        cells = [median_of([at[i] for at in result["at"]]) for i in range(3)]
        reached = [r for r in result["reach"] if r is not None]
        reach = f"{statistics.median(reached):.0f} ({len(reached)}/{args.seeds} seeds)" if reached else "never"
        print(f"| {name} | {' | '.join(cells)} | {reach} | {statistics.median(result['wall']):.1f} s |")
    if args.plot:
        plot(args.plot, results, curve_marks, budget)


def median_of(values: List[Optional[float]]) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):.4f}" if len(known) > len(values) // 2 else "-"


def plot(path: str, results: Dict[str, Dict[str, List[Any]]], marks: List[int], budget: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for name, result in results.items():
        medians = []
        for i in range(len(marks)):
            known = [curve[i] for curve in result["curve"] if curve[i] is not None]
            medians.append(statistics.median(known) if len(known) > len(result["curve"]) // 2 else float("nan"))
        axes.plot([m / budget for m in marks], medians, marker=".", label=name)
    axes.set_xlabel("epochs consumed (fraction of the no-pruning budget)")
    axes.set_ylabel("best final validation error (median over seeds)")
    axes.set_yscale("log")  # a grid's first configurations sit near 0.8 while the methods differ around 0.02
    axes.legend(fontsize=8)
    figure.savefig(path, dpi=100, bbox_inches="tight")


if __name__ == "__main__":
    main()
