"""``exp-compat run`` and ``exp-compat gopt``: EXP's two commands, with Hydra underneath.

They take EXP's options, load a plain EXP module (a file with ``run(**kwargs)``;
no decorator, no package needed) and run it as a Hydra multirun with the exp
sweepers and the exp_local launcher, chosen by *name* (``hydra/sweeper=exp_grid``,
``hydra/launcher=exp_local``): this package never imports the plugins. Files land
where EXP put them, in the output directory (the current one by default):
``<name>_params.csv``/``<name>_results.csv`` or ``<name>_configurations.csv``, the
plots, ``<name>.log`` with the errors, plus Hydra's per-job directories under
``<name>/`` and its ``multirun.yaml``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

from exp_compat.files.durable import is_plain_file_name

MODULES: Dict[str, Any] = {}  # loaded runnables, one per file, per process


def load_runnable(path: str) -> Any:
    """The module at ``path`` (any file, importable or not), checked for ``run`` as EXP checked it."""
    path = os.path.abspath(path)
    if path not in MODULES:
        spec = importlib.util.spec_from_file_location("runnable", location=path)
        if spec is None or spec.loader is None:
            raise TypeError(f"{path} is not a Python module file")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "run", None)):
            raise TypeError(f'module in {path} does not contain a "run" method')
        MODULES[path] = module
    return MODULES[path]


class ModuleTask:
    """Hydra's task function for an EXP module: picklable by path, loaded once per worker process."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)

    def __call__(self, cfg: Any) -> Any:
        from exp_compat.apps import job_kwargs

        return load_runnable(self.path).run(**job_kwargs(cfg))


def whole_number(text: str) -> int:
    """An argparse type: a whole number, or a one-line usage error."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``low``, or a one-line usage error."""

    def number(text: str) -> int:
        value = whole_number(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return number


def _name(text: str) -> str:
    if not is_plain_file_name(text):
        raise argparse.ArgumentTypeError(f"{text!r}: use letters, digits, '_', '-' and '.' (it prefixes file names)")
    return text


def _existing_file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return text


def add_common(parser: argparse.ArgumentParser, default_name: str) -> None:
    parser.add_argument("-p", "--params", required=True, type=_existing_file, help="path to the parameter space file (EXP TOML)")
    parser.add_argument(
        "-m",
        "--module",
        required=True,
        type=_existing_file,
        help="path to the Python module file with run(**kwargs); its return value is the job's result",
    )
    parser.add_argument(
        "-w",
        "--workers",
        type=at_least(1),
        default=1,
        help="parallel workers (default 1): exp_local worker processes that stay alive across jobs "
        "(EXP started the same number of processes)",
    )
    parser.add_argument(
        "-g",
        "--gpu",
        action="store_true",
        help="one GPU per worker, from the GPUs not under load (EXP's 'load < 0.2'), found with NVML "
        "(pip install 'hydra-exp[gpu]'); each job sees its device in CUDA_VISIBLE_DEVICES. Differs "
        "from EXP: --workers more than the free GPUs is an error before any job runs (EXP quietly "
        "ran fewer workers)",
    )
    parser.add_argument(
        "--name", default=default_name, type=_name, help=f"experiment name, the prefix of the files written (default {default_name})"
    )
    parser.add_argument(
        "hydra_overrides",
        nargs="*",
        metavar="OVERRIDE",
        help="extra Hydra overrides after '--' (not in EXP), e.g. -- hydra.launcher.timeout_s=600",
    )


def _launcher(args: argparse.Namespace) -> List[str]:
    if args.gpu:
        return ["hydra/launcher=exp_gpu", f"hydra.launcher.workers={args.workers}"]
    return ["hydra/launcher=exp_local", f"hydra.launcher.workers={min(args.workers, os.cpu_count() or 1)}"]


def run_overrides(args: argparse.Namespace) -> List[str]:
    overrides = ["hydra/sweeper=exp_grid", f"hydra.sweeper.runs={args.runs}"]
    if args.config_ids:
        overrides.append(f"hydra.sweeper.config_ids=[{','.join(str(i) for i in args.config_ids)}]")
    if args.cancel:
        overrides.append("hydra.sweeper.on_failure=cancel")
    return overrides


def gopt_overrides(args: argparse.Namespace) -> List[str]:
    surrogate = "random" if args.surrogate == "RANDOM" else args.surrogate
    acquisition = args.acquisition.lower() if args.acquisition == "GP_HEDGE" else args.acquisition
    return [
        "hydra/sweeper=exp_gopt",
        f"hydra.sweeper.n_trials={args.n}",
        f"hydra.sweeper.surrogate={surrogate}",
        f"hydra.sweeper.acquisition={acquisition}",
        f"hydra.sweeper.kappa={args.kappa}",
        f"hydra.sweeper.xi={args.xi}",
        f"hydra.sweeper.mode={'sync' if args.sync else 'async'}",
        f"hydra.sweeper.plot={str(args.plot).lower()}",
    ]


def hydra_argv(args: argparse.Namespace, sweeper: List[str]) -> List[str]:
    """The Hydra command line for these EXP options (without the program name)."""
    from exp_compat.apps import job_name_override
    from exp_compat.overrides import render_value

    out = Path(getattr(args, "out", None) or ".").resolve()
    name = args.name
    quoted = render_value  # paths as Hydra reads them back, whatever their characters
    return [
        "-m",
        *sweeper,
        *_launcher(args),
        f"+exp.params={quoted(os.path.abspath(args.params))}",
        f"hydra.sweeper.name={name}",
        f"hydra.sweep.dir={quoted(str(out))}",
        f"hydra.sweep.subdir={name}/${{hydra.job.num}}",
        job_name_override(args.module),
        # EXP's <name>.log: the errors the sweep reports, in the output directory
        "+hydra.hydra_logging.handlers.exp_errors={class: logging.FileHandler, level: ERROR, formatter: simple, "
        f"filename: {quoted(str(out / (name + '.log')))}, delay: true}}",
        "hydra.hydra_logging.root.handlers=[console,exp_errors]",
        *args.hydra_overrides,
    ]


def execute(args: argparse.Namespace, sweeper: List[str]) -> int:
    """Run the Hydra multirun in this process; its exit status."""
    import hydra

    try:
        load_runnable(args.module)  # EXP's check, before anything starts or is written
    except TypeError as error:
        print(f"exp-compat: error: {error}", file=sys.stderr)
        return 2
    if getattr(args, "out", None):
        Path(args.out).mkdir(parents=True, exist_ok=True)
    task = ModuleTask(args.module)
    saved = sys.argv
    sys.argv = [saved[0], *hydra_argv(args, sweeper)]
    try:
        hydra.main(version_base=None, config_path=None, config_name=None)(task)()
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
    finally:
        sys.argv = saved
    return 0


def add_commands(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="EXP's exp.run: run every configuration of a space (Hydra + exp_grid + exp_local)",
        description="Runs all the configurations in a parameter space with a module's run(**kwargs), as EXP's "
        "'python -m exp.run' did, through Hydra with the exp_grid sweeper and the exp_local launcher. Writes "
        "<name>_params.csv (every configuration), <name>_results.csv (one row per finished job, as it finishes), "
        "<name>.log (errors) and Hydra's job directories under <name>/ in the current directory.",
    )
    add_common(run, "exp")
    run.add_argument("-r", "--runs", type=at_least(1), default=1, help="run every configuration R times (each job gets run=1..R)")
    run.add_argument(
        "-c",
        "--config-ids",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="run only this configuration id (repeatable), as numbered in <name>_params.csv",
    )
    run.add_argument("--cancel", action="store_true", help="stop launching new jobs after the first failure; exit non-zero")
    run.set_defaults(execute=lambda args: execute(args, run_overrides(args)))

    gopt = commands.add_parser(
        "gopt",
        help="EXP's exp.gopt: Bayesian optimization with scikit-optimize (Hydra + exp_gopt + exp_local)",
        description="Optimizes a module's run(**kwargs) (its return value is minimised) over a parameter space, as "
        "EXP's 'python -m exp.gopt' did, through Hydra with the exp_gopt sweeper and the exp_local launcher. Writes "
        "<name>_configurations.csv (one row per finished trial, as it finishes), optimization_results.yaml, with "
        "--plot <name>_convergence.png and <name>_objective.png, <name>.log (errors) and Hydra's job directories "
        "under <name>/, in --out or the current directory.",
    )
    add_common(gopt, "opt")
    gopt.add_argument("-n", "--n", type=at_least(1), default=1, help="number of trials (configurations evaluated)")
    gopt.add_argument(
        "-s",
        "--surrogate",
        default="GP",
        type=str.upper,
        choices=["GP", "RF", "ET", "GBRT", "RANDOM"],
        help="surrogate model: GP (gaussian process), RF (random forest), ET (extra trees); ours: GBRT, RANDOM (random search)",
    )
    gopt.add_argument(
        "-a",
        "--acquisition",
        default="EI",
        type=str.upper,
        choices=["LCB", "EI", "PI", "GP_HEDGE"],
        help="acquisition function: LCB, EI, PI; ours: GP_HEDGE (skopt's portfolio of the three)",
    )
    gopt.add_argument(
        "--plot",
        action="store_true",
        help="save the convergence and objective plots (differs from EXP: saved, not shown, no display needed)",
    )
    gopt.add_argument("-o", "--out", help="output directory for the results (default: the current directory)")
    gopt.add_argument("--sync", action="store_true", help="wait for all workers, then propose as many new trials")
    gopt.add_argument(
        "--async",
        dest="sync",
        action="store_false",
        help="(default) propose a new trial as soon as one finishes, accounting for the running ones "
        "(differs from EXP, which ignored them and could propose near-duplicates)",
    )
    gopt.add_argument("--kappa", type=float, default=1.96, help="LCB: how much the predicted variance counts (exploration)")
    gopt.add_argument("--xi", type=float, default=0.01, help="EI and PI: how much improvement over the best is wanted")
    gopt.set_defaults(execute=lambda args: execute(args, gopt_overrides(args)))
