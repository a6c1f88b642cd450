"""Config dataclasses of the exp launchers, registered in Hydra's ConfigStore (no heavy imports)."""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class SkipBusyConf:
    """With gpus=auto, leave out devices busier than this (EXP used 'load < 0.2'); null: use them all."""

    max_memory: Optional[float] = 0.2  # fraction of the device's memory in use
    max_utilization: Optional[float] = 0.2  # fraction of time the device was busy


@dataclass
class ExpLocalConf:
    _target_: str = "hydra_plugins.exp_launcher.exp_local.ExpLocalLauncher"
    # Parallel job slots; null: one per device slot when GPUs are used, else the number of CPUs.
    workers: Optional[int] = None
    # null: no GPU assignment; "auto": the free GPUs (within a parent CUDA_VISIBLE_DEVICES); or a list of indices/UUIDs.
    gpus: Any = None
    # Concurrent jobs per device (N > 1 packs N jobs on one GPU).
    jobs_per_gpu: int = 1
    # Devices per job (2 gives a job CUDA_VISIBLE_DEVICES=a,b of two distinct devices).
    gpus_per_job: int = 1
    skip_busy: SkipBusyConf = field(default_factory=SkipBusyConf)
    # Seconds a job may run before it is killed (with its process tree) and marked failed; null: no limit.
    timeout_s: Optional[float] = None
    # Jobs a worker process runs before it is replaced; null: it lives for the whole sweep; 1: a fresh process per job.
    max_jobs_per_worker: Optional[int] = None
    # Extra environment variables for every job.
    env: Dict[str, str] = field(default_factory=dict)


@dataclass
class ExpGpuConf(ExpLocalConf):
    gpus: Any = "auto"


ConfigStore.instance().store(group="hydra/launcher", name="exp_local", node=ExpLocalConf, provider="hydra-exp")
ConfigStore.instance().store(group="hydra/launcher", name="exp_gpu", node=ExpGpuConf, provider="hydra-exp")
