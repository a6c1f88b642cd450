"""Which devices each job slot gets, decided and checked before any job starts.

CUDA shows *zero* devices, silently, for an invalid CUDA_VISIBLE_DEVICES (an
unknown index or UUID, a repeated index): the job would run on the CPU without
telling anyone. So every device is checked against NVML (``nvidia-ml-py``,
imported only when GPUs are asked for); ``auto`` stays within a parent's
CUDA_VISIBLE_DEVICES; anything wrong is an error before the first job.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, List, Optional, Sequence, Tuple

from hydra.errors import CompactHydraException

from hydra_plugins.exp_launcher.config import SkipBusyConf

log = logging.getLogger("hydra_plugins.exp_launcher")

Slot = Tuple[str, ...]


class LauncherError(CompactHydraException):
    """A launcher setting that cannot work: Hydra prints the message alone and exits 1."""


@dataclasses.dataclass
class Device:
    index: str
    uuid: str
    memory_used: float  # fraction
    utilization: float  # fraction


def nvml_devices() -> Optional[List[Device]]:
    """The machine's NVIDIA devices, or None when NVML (nvidia-ml-py, or the driver) is not there."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        found = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            busy = pynvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100.0
            found.append(Device(str(i), uuid.decode() if isinstance(uuid, bytes) else uuid, memory.used / memory.total, busy))
        return found
    finally:
        pynvml.nvmlShutdown()


def parent_visible(environ: Any = os.environ) -> Optional[List[str]]:
    """The parent's CUDA_VISIBLE_DEVICES as a list (None when unset)."""
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _match(entry: str, devices: Sequence[Device]) -> Optional[Device]:
    for device in devices:
        if entry in (device.index, device.uuid):
            return device
    return None


def at_least(name: str, value: Optional[int], low: int) -> None:
    """A whole-number option's lower bound (its type was checked as the options were read; None passes,
    where the type allows null)."""
    if value is not None and value < low:
        raise LauncherError(f"hydra.launcher.{name} must be a whole number >= {low}, got {value!r}")


def _device_entry(value: Any) -> str:
    """One entry of a gpus list: a device index or a GPU-/MIG- UUID. Anything else (``Auto``, a typo) would
    become a CUDA_VISIBLE_DEVICES entry that CUDA silently reads as no device."""
    text = str(value).strip()
    if isinstance(value, bool) or not ((text.isascii() and text.isdigit()) or text.startswith(("GPU-", "MIG-"))):
        raise LauncherError(
            f"hydra.launcher.gpus: {value!r} is not a device; use null, auto, or a list of device indices or GPU-/MIG- UUIDs"
        )
    return text


def choose_devices(
    gpus: Any, skip_busy: Optional[SkipBusyConf], devices: Optional[List[Device]], visible: Optional[List[str]]
) -> List[str]:
    """The device ids (as CUDA_VISIBLE_DEVICES entries) the launcher may use."""
    if gpus == "auto":
        if not devices:
            raise LauncherError(
                "hydra.launcher.gpus=auto: no NVIDIA GPU found (NVML unavailable or no device; "
                "pip install nvidia-ml-py). Use gpus=null to run on the CPU, or list devices explicitly."
            )
        chosen = []
        for entry in visible if visible is not None else [d.index for d in devices]:
            device = _match(entry, devices)
            if device is None:
                raise LauncherError(f"the parent's CUDA_VISIBLE_DEVICES names {entry!r}, which is not a device here")
            max_memory = skip_busy.max_memory if skip_busy else None
            max_busy = skip_busy.max_utilization if skip_busy else None
            if (max_memory is not None and device.memory_used > max_memory) or (max_busy is not None and device.utilization > max_busy):
                log.warning(
                    "exp_local: skipping busy GPU %s (memory %.0f%%, utilization %.0f%%)",
                    entry,
                    100 * device.memory_used,
                    100 * device.utilization,
                )
                continue
            chosen.append(entry)
        if not chosen:
            raise LauncherError("hydra.launcher.gpus=auto: every GPU is busy (see hydra.launcher.skip_busy)")
        return chosen
    if isinstance(gpus, (str, int)):
        gpus = [gpus]
    if not isinstance(gpus, (list, tuple)) or not gpus:
        raise LauncherError(f"hydra.launcher.gpus must be null, auto, or a list of device indices or UUIDs, got {gpus!r}")
    entries = [_device_entry(g) for g in gpus]
    duplicates = sorted({e for e in entries if entries.count(e) > 1})
    if duplicates:
        raise LauncherError(f"hydra.launcher.gpus lists {duplicates} more than once (use jobs_per_gpu to share a device)")
    if devices is None:
        log.warning("exp_local: NVML is not available (pip install nvidia-ml-py): devices %s are used as given, unchecked", entries)
        return entries
    known = [_match(e, devices) for e in entries]
    unknown = [e for e, d in zip(entries, known) if d is None]
    if unknown:
        have = ", ".join(f"{d.index} ({d.uuid})" for d in devices) or "none"
        raise LauncherError(f"hydra.launcher.gpus: no such device {unknown}; this machine has: {have}")
    physical = {d.index for d in known if d}
    if len(physical) < len(entries):
        raise LauncherError(f"hydra.launcher.gpus names one device twice (by index and by UUID): {entries}")
    if visible is not None:
        allowed = {d.index for d in (_match(v, devices) for v in visible) if d}
        outside = [e for e, d in zip(entries, known) if d and d.index not in allowed]
        if outside:
            raise LauncherError(f"hydra.launcher.gpus {outside} are outside the parent's CUDA_VISIBLE_DEVICES={','.join(visible)}")
    return entries


def device_slots(
    gpus: Any,
    jobs_per_gpu: int,
    gpus_per_job: int,
    skip_busy: Optional[SkipBusyConf] = None,
    devices: Any = "probe",
    visible: Any = "environment",
) -> Optional[List[Slot]]:
    """One tuple of device ids per job slot (None: no GPU assignment). ``gpus`` is null, auto or a list of
    indices or UUIDs, a union that no config type says, so it is checked here."""
    if gpus is None:
        return None
    at_least("jobs_per_gpu", jobs_per_gpu, 1)
    at_least("gpus_per_job", gpus_per_job, 1)
    if devices == "probe":
        devices = nvml_devices()
    if visible == "environment":
        visible = parent_visible()
    chosen = choose_devices(gpus, skip_busy, devices, visible)
    if gpus_per_job > len(chosen):
        raise LauncherError(f"hydra.launcher.gpus_per_job={gpus_per_job}, but only {len(chosen)} devices are usable: {chosen}")
    groups = [tuple(chosen[i : i + gpus_per_job]) for i in range(0, len(chosen) - gpus_per_job + 1, gpus_per_job)]
    if len(groups) * gpus_per_job < len(chosen):
        log.warning("exp_local: devices %s are left unused (gpus_per_job=%d)", chosen[len(groups) * gpus_per_job :], gpus_per_job)
    return [group for group in groups for _ in range(jobs_per_gpu)]
