"""The exp_slurm Hydra launcher (thin: the work is in _slurm.py, imported when jobs are launched)."""

from hydra_plugins.exp_launcher._launcher import EngineLauncher


class ExpSlurmLauncher(EngineLauncher):
    """Jobs on a SLURM cluster through submitit, one SLURM job per trial, also as futures."""

    engine = "hydra_plugins.exp_launcher._slurm:SlurmEngine"
