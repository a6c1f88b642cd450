"""Config dataclasses of the exp launchers, registered in Hydra's ConfigStore (no heavy imports).

They are the one statement of the options: Hydra checks every value's type against them, and the
launchers read their options as these dataclasses, checking only what a type cannot say.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class SkipBusyConf:
    """With gpus=auto, leave out devices busier than this (EXP used 'load < 0.2'); null: use them all."""

    max_memory: Optional[float] = 0.2  # fraction of the device's memory in use
    max_utilization: Optional[float] = 0.2  # fraction of time the device was busy


@dataclass
class ExpLocalConf:
    _target_: str = "hydra_plugins.exp_launcher.exp_local.ExpLocalLauncher"
    # Parallel job slots; null: one per device slot when GPUs are used, else the number of CPUs
    # (without GPUs, at most 8 per CPU). Workers are started as jobs need them, never more than jobs.
    workers: Optional[int] = None
    # null: no GPU assignment; "auto": the free GPUs (within a parent CUDA_VISIBLE_DEVICES); or a list of indices/UUIDs.
    gpus: Any = None
    # Concurrent jobs per device (N > 1 packs N jobs on one GPU).
    jobs_per_gpu: int = 1
    # Devices per job (2 gives a job CUDA_VISIBLE_DEVICES=a,b of two distinct devices).
    gpus_per_job: int = 1
    skip_busy: Optional[SkipBusyConf] = field(default_factory=SkipBusyConf)
    # Seconds a job may run before it is killed (with its process tree) and marked failed; null: no limit.
    timeout_s: Optional[float] = None
    # Jobs a worker process runs before it is replaced; null: it lives for the whole sweep; 1: a fresh process per job.
    max_jobs_per_worker: Optional[int] = None
    # Threads of OpenMP/BLAS pools per worker (OMP_NUM_THREADS...) where the environment sets none;
    # null: the CPUs shared out between the workers; 0: leave the libraries' defaults.
    threads_per_worker: Optional[int] = None
    # Extra environment variables for every job.
    env: Dict[str, str] = field(default_factory=dict)


@dataclass
class ExpGpuConf(ExpLocalConf):
    gpus: Any = "auto"


@dataclass
class SubmititQueueConf:
    """The job parameters that every submitit executor takes (its AutoExecutor's names, without a prefix)."""

    timeout_min: int = 60
    cpus_per_task: Optional[int] = None
    gpus_per_node: Optional[int] = None
    tasks_per_node: int = 1
    mem_gb: Optional[int] = None
    nodes: int = 1
    name: str = "${hydra.job.name}"
    stderr_to_stdout: bool = False


@dataclass
class ExpSlurmConf(SubmititQueueConf):
    """SLURM through submitit; option names and defaults follow hydra-submitit-launcher's submitit_slurm.

    Every option is a submitit job parameter (those below ``SubmititQueueConf``'s with ``slurm_``
    before their names), except the ones exp_slurm itself reads (``_slurm.NOT_JOB_PARAMETERS``).
    """

    _target_: str = "hydra_plugins.exp_launcher.exp_slurm.ExpSlurmLauncher"
    # Where submitit keeps its scripts, pickles and logs; a fresh subfolder is added for every launch.
    submitit_folder: str = "${hydra.sweep.dir}/.submitit/%j"
    partition: Optional[str] = None
    qos: Optional[str] = None
    comment: Optional[str] = None
    constraint: Optional[str] = None
    exclude: Optional[str] = None
    gres: Optional[str] = None
    cpus_per_gpu: Optional[int] = None
    gpus_per_task: Optional[int] = None
    mem_per_gpu: Optional[str] = None
    mem_per_cpu: Optional[str] = None
    account: Optional[str] = None
    signal_delay_s: int = 120
    # Times a job that reaches its time limit is requeued (it restarts from scratch unless it checkpoints).
    max_num_timeout: int = 0
    additional_parameters: Dict[str, Any] = field(default_factory=dict)
    # Jobs in flight at once (the slots an asynchronous sweeper keeps busy), and a job array's limit.
    array_parallelism: int = 256
    setup: Optional[List[str]] = None
    srun_args: Optional[List[str]] = None
    # Ctrl-C, or the driver ending with jobs unfinished: true cancels them (scancel); false leaves them running.
    cancel_at_exit: bool = True
    # Seconds between two squeue calls that look for jobs that ended without a result.
    poll_interval_s: float = 2.0


ConfigStore.instance().store(group="hydra/launcher", name="exp_local", node=ExpLocalConf, provider="hydra-exp")
ConfigStore.instance().store(group="hydra/launcher", name="exp_gpu", node=ExpGpuConf, provider="hydra-exp")
ConfigStore.instance().store(group="hydra/launcher", name="exp_slurm", node=ExpSlurmConf, provider="hydra-exp")
