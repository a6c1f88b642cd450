"""hydra-exp: Hydra plugins for EXP parameter spaces, grid runs and scikit-optimize sweeps."""

from pathlib import Path

from setuptools import find_namespace_packages, setup

setup(
    name="hydra-exp",
    version="0.1.0",
    description="Hydra sweepers and launchers that bring EXP (TOML parameter spaces, grid runs, "
    "scikit-optimize global optimization, one GPU per worker) into Hydra",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    # hydra_plugins is a namespace package shared with every other Hydra plugin: no __init__.py.
    packages=find_namespace_packages(include=["hydra_plugins.*", "exp_compat", "exp_compat.*"]),
    # Upper bounds where this package relies on private upstream code, each kept in one module that names
    # the version it mirrors; CI also runs the marked tests against the newest releases these bounds allow
    # (.ci/run, `pytest -m upstream`), so a release that moves that code is caught before users install it.
    install_requires=[
        # exp_launcher/_hydra_internals.py: Hydra 1.3's private sweep-config loading; exp_compat/_hydra_internals.py:
        # the private names of Hydra that the sweepers and exp-compat convert need too
        "hydra-core>=1.3.2,<1.4",
        "omegaconf>=2.3,<2.4",
        "tomli>=1.1; python_version < '3.11'",
        "tomli-w>=1.0",
        # exp_sweeper/_skopt_internals.py: scikit-optimize's private functions (0.10.2 is its last release: the
        # project is archived), the scikit-learn attributes that its GP reads, the GBRT repair for scikit-learn's
        # estimator tags (1.6) and numpy 2.4
        "scikit-optimize>=0.10.2,<0.11",
        "scikit-learn>=1.6,<2",
        "numpy>=1.24,<3",
        "scipy>=1.10",  # L-BFGS polishing of proposed points
        "threadpoolctl>=3.0",  # the optimizer runs its numerical libraries on one thread
        "PyYAML>=6",  # exp-compat's YAML export and import, the sweep's optimal-result file
        # exp_gopt's plot option (EXP's --plot); a dependency rather than an extra because the option is read
        # only when the sweep ends, so a missing matplotlib would fail a finished sweep instead of its start
        "matplotlib>=3.7",
        "cloudpickle>=2.0",  # exp_local's workers receive the task function
    ],
    extras_require={
        "gpu": ["nvidia-ml-py>=12"],
        "slurm": ["submitit>=1.5"],
        "torch": ["torch>=2.0"],  # examples/torch only
        "bench": ["hydra-submitit-launcher>=1.2", "hydra-joblib-launcher>=1.2"],
        # torch for the PyTorch example's test, pinned to the CPU build that CI's machines have on disk
        # (a range would take a CUDA build of several GB there)
        "test": [
            "pytest>=7",
            "hypothesis>=6.80",
            "hydra-optuna-sweeper>=1.2",
            "hydra-joblib-launcher>=1.2",
            "hydra-submitit-launcher>=1.2",
            "torch==2.13.0",
            # the code checks (tests/test_code_checks.py), pinned: a new release's new rules must not fail CI
            "ruff==0.17.6",
            "mypy==2.4.1",
        ],
    },
    entry_points={"console_scripts": ["exp-compat=exp_compat.cli:main"]},
    classifiers=[
        "Framework :: Hydra",
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX :: Linux",
    ],
)
