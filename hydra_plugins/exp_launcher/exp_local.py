"""The exp_local Hydra launcher (thin: the work is in _local.py, imported when jobs are launched)."""

from hydra_plugins.exp_launcher._launcher import EngineLauncher


class ExpLocalLauncher(EngineLauncher):
    """Persistent worker processes on this machine, one device slot each."""

    engine = "hydra_plugins.exp_launcher._local:LocalEngine"
