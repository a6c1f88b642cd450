"""GPU check for exp_local/exp_gpu on a machine with NVIDIA GPUs (needs torch and nvidia-ml-py).

Runs real Hydra multiruns (subprocesses, as a user types them) and checks, with NVML and torch:

1. ``hydra/launcher=exp_gpu`` (gpus=auto) finds the GPUs and each job's torch sees exactly the
   device its slot was given (compared by UUID); the same with a parent CUDA_VISIBLE_DEVICES
   given as a UUID.
2. Settings CUDA would silently turn into a CPU run (unknown index, unknown UUID, an index
   twice, a parent CUDA_VISIBLE_DEVICES naming no device, more gpus_per_job than devices)
   stop the sweep before any job runs, with exit status 1.
3. ``jobs_per_gpu=2`` runs two jobs on one device at the same time (recorded start/end times).
4. A CUDA job past ``timeout_s`` is killed and fails alone; afterwards no process holds the GPU.
5. Per-job time of a job that imports torch and initialises CUDA, persistent workers
   (max_jobs_per_worker=null) against a fresh process per job (max_jobs_per_worker=1).

    python benchmarks/gpu_check.py [--jobs 8] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

APP = textwrap.dedent("""
    import json, os, time
    import hydra
    from hydra.core.hydra_config import HydraConfig

    @hydra.main(version_base=None, config_path=None, config_name=None)
    def main(cfg):
        started = time.time()
        import torch
        imported = time.time()
        x = torch.ones(1024, device="cuda") * 2  # initialise CUDA for real
        torch.cuda.synchronize()
        props = torch.cuda.get_device_properties(0)
        if cfg.get("hold_s"):
            big = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")  # hold device memory
            time.sleep(cfg.hold_s)
        record = {"num": HydraConfig.get().job.num, "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
                  "count": torch.cuda.device_count(), "uuid": str(getattr(props, "uuid", "")),
                  "pid": os.getpid(), "start": started, "end": time.time(),
                  "import_s": imported - started, "seconds": time.time() - started, "sum": float(x.sum())}
        with open(os.environ["GPU_CHECK_LOG"], "a") as log:
            log.write(json.dumps(record) + "\\n")

    if __name__ == "__main__":
        main()
""")


def nvml() -> Dict[str, Any]:
    """Index -> UUID of every device, and the PIDs NVML sees using them."""
    import pynvml

    pynvml.nvmlInit()
    try:
        uuids, pids = {}, []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            uuids[str(i)] = uuid.decode() if isinstance(uuid, bytes) else uuid
            pids += [p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)]
        return {"uuids": uuids, "pids": pids}
    finally:
        pynvml.nvmlShutdown()


class Check:
    def __init__(self, work: Path) -> None:
        self.work = work
        (work / "app.py").write_text(APP)
        self.results: Dict[str, Any] = {}
        self.runs = 0

    def run(self, *args: str, env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        """One multirun; its exit status, wall-clock, output tail and the records its jobs wrote."""
        self.runs += 1
        log = self.work / f"run{self.runs}.jsonl"
        environ = {**os.environ, "GPU_CHECK_LOG": str(log), **(env or {})}
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "app.py", "-m", *args, f"hydra.sweep.dir={self.work / log.stem}"],
            cwd=self.work,
            env=environ,
            capture_output=True,
            text=True,
            timeout=240,
        )
        wall = time.perf_counter() - started
        jobs = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return {
            "rc": done.returncode,
            "wall": wall,
            "jobs": sorted(jobs, key=lambda j: j["num"]),
            "tail": [line for line in (done.stdout + done.stderr).splitlines() if line.strip()][-3:],
        }

    def record(self, name: str, ok: bool, **details: Any) -> None:
        self.results[name] = {"ok": ok, **details}
        print(f"[{'PASS' if ok else 'FAIL'}] {name}: {json.dumps(details, default=str)[:600]}", flush=True)


def sees_own_device(jobs: List[dict], uuids: Dict[str, str]) -> bool:
    """Each job saw one device, and it is the one CUDA_VISIBLE_DEVICES named (by index or UUID)."""

    def uuid_of(visible: str) -> str:
        return uuids.get(visible, visible)

    return bool(jobs) and all(j["count"] == 1 and uuid_of(j["visible"]).replace("GPU-", "") == j["uuid"].replace("GPU-", "") for j in jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None, help="write every result here")
    options = parser.parse_args()
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    machine = nvml()
    uuids = machine["uuids"]
    print(f"NVML devices: {uuids}; processes on them before: {machine['pids']}", flush=True)
    first_index, first_uuid = next(iter(uuids.items()))
    n = options.jobs
    with tempfile.TemporaryDirectory() as tmp:
        check = Check(Path(tmp))

        out = check.run("hydra/launcher=exp_gpu", f"+x=range(0,{n})")
        check.record(
            "gpus=auto: every job's torch sees exactly its own device",
            out["rc"] == 0 and len(out["jobs"]) == n and sees_own_device(out["jobs"], uuids),
            rc=out["rc"],
            seen=sorted({(j["visible"], j["count"], j["uuid"]) for j in out["jobs"]}),
        )

        out = check.run("hydra/launcher=exp_gpu", "+x=range(0,2)", env={"CUDA_VISIBLE_DEVICES": first_uuid})
        check.record(
            "parent CUDA_VISIBLE_DEVICES=<UUID>: auto uses it, torch sees it",
            out["rc"] == 0
            and len(out["jobs"]) == 2
            and sees_own_device(out["jobs"], uuids)
            and all(j["visible"] == first_uuid for j in out["jobs"]),
            rc=out["rc"],
            seen=sorted({(j["visible"], j["count"]) for j in out["jobs"]}),
        )

        bad = {
            "unknown index": (["hydra.launcher.gpus=[99]"], None),
            "unknown UUID": (["hydra.launcher.gpus=[GPU-00000000-0000-0000-0000-000000000000]"], None),
            "index twice": ([f"hydra.launcher.gpus=[{first_index},{first_index}]"], None),
            "index and its UUID": ([f"hydra.launcher.gpus=[{first_index},{first_uuid}]"], None),
            "parent CUDA_VISIBLE_DEVICES=99": ([], {"CUDA_VISIBLE_DEVICES": "99"}),
            f"gpus_per_job={len(uuids) + 1}": ([f"hydra.launcher.gpus_per_job={len(uuids) + 1}"], None),
        }
        for name, (extra, env) in bad.items():
            out = check.run("hydra/launcher=exp_gpu", "+x=range(0,2)", *extra, env=env)
            check.record(
                f"rejected before any job: {name}",
                out["rc"] == 1 and not out["jobs"],
                rc=out["rc"],
                jobs=len(out["jobs"]),
                message=out["tail"][-2:-1],
            )  # the line above HYDRA_FULL_ERROR's

        out = check.run("hydra/launcher=exp_gpu", "hydra.launcher.jobs_per_gpu=2", "+hold_s=3", "+x=range(0,4)")
        jobs = out["jobs"]
        overlaps = sum(1 for i, a in enumerate(jobs) for b in jobs[i + 1 :] if a["start"] < b["end"] and b["start"] < a["end"])
        most = max((sum(1 for b in jobs if b["start"] <= a["start"] < b["end"]) for a in jobs), default=0)
        check.record(
            "jobs_per_gpu=2: two jobs share the device at once, never three",
            out["rc"] == 0 and len(jobs) == 4 and sees_own_device(jobs, uuids) and most == 2,
            rc=out["rc"],
            overlapping_pairs=overlaps,
            most_at_once=most,
            wall_s=round(out["wall"], 1),
        )

        out = check.run("hydra/launcher=exp_gpu", "hydra.launcher.timeout_s=15", "+hold_s=0,120,0")
        time.sleep(1)
        after = nvml()["pids"]
        held = [j["num"] for j in out["jobs"]]
        check.record(
            "timeout_s: the hung CUDA job is killed alone, nothing holds the GPU after",
            out["rc"] == 1 and held == [0, 2] and not after and out["wall"] < 100,
            rc=out["rc"],
            finished_jobs=held,
            gpu_processes_after=after,
            wall_s=round(out["wall"], 1),
        )

        rows = {}
        for limit in ("null", "1"):
            out = check.run(
                "hydra/launcher=exp_gpu", "hydra.launcher.workers=1", f"hydra.launcher.max_jobs_per_worker={limit}", f"+x=range(0,{n})"
            )
            jobs = out["jobs"]
            rows[limit] = {
                "rc": out["rc"],
                "jobs": len(jobs),
                "wall_s": round(out["wall"], 2),
                "per_job_s": round(out["wall"] / max(len(jobs), 1), 3),
                "worker_processes": len({j["pid"] for j in jobs}),
                "median_torch_import_s": round(sorted(j["import_s"] for j in jobs)[len(jobs) // 2], 3) if jobs else None,
                "median_job_s": round(sorted(j["seconds"] for j in jobs)[len(jobs) // 2], 3) if jobs else None,
            }
        check.record(
            "per-job time, persistent workers vs a fresh process per job",
            all(r["rc"] == 0 and r["jobs"] == n for r in rows.values())
            and rows["null"]["worker_processes"] == 1
            and rows["1"]["worker_processes"] == n,
            **rows,
        )
        print("| max_jobs_per_worker | jobs | wall-clock | per job | worker processes | torch import in job (median) |")
        print("|---|---|---|---|---|---|")
        for limit, r in rows.items():
            print(
                f"| {limit} | {r['jobs']} | {r['wall_s']:.1f} s | {r['per_job_s']:.2f} s | {r['worker_processes']} | "
                f"{r['median_torch_import_s']} s |"
            )
        print(f"processes on the GPU at the end: {nvml()['pids']}")
        if options.json:
            options.json.write_text(json.dumps({"devices": uuids, "checks": check.results}, indent=2, default=str))
        failed = [name for name, r in check.results.items() if not r["ok"]]
        print(f"{len(check.results) - len(failed)}/{len(check.results)} checks passed" + (f"; FAILED: {failed}" if failed else ""))
        sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
