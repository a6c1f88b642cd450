"""GPU check for exp_local/exp_gpu on a machine with NVIDIA GPUs (needs torch and nvidia-ml-py).

1. `hydra/launcher=exp_gpu` (gpus=auto) finds the GPUs, and each job's torch sees exactly one device,
   the one its slot was given (compared by UUID with NVML).
2. Per-job time of a job that imports torch and touches CUDA, with persistent workers
   (max_jobs_per_worker=null) against a fresh process per job (max_jobs_per_worker=1).

    python benchmarks/gpu_check.py [--jobs 8]

Not yet run: no session so far has had a GPU machine (see issue 4).
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

APP = textwrap.dedent('''
    import json, os, time
    import hydra
    from hydra.core.hydra_config import HydraConfig

    @hydra.main(version_base=None, config_path=None, config_name=None)
    def main(cfg):
        started = time.time()
        import torch
        x = torch.ones(1024, device="cuda") * 2  # initialise CUDA for real
        props = torch.cuda.get_device_properties(0)
        record = {"num": HydraConfig.get().job.num, "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
                  "count": torch.cuda.device_count(), "uuid": str(getattr(props, "uuid", "")),
                  "pid": os.getpid(), "seconds": time.time() - started, "sum": float(x.sum())}
        with open(os.environ["GPU_CHECK_LOG"], "a") as log:
            log.write(json.dumps(record) + "\\n")

    if __name__ == "__main__":
        main()
''')


def nvml_uuids() -> dict:
    import pynvml

    pynvml.nvmlInit()
    try:
        found = {}
        for i in range(pynvml.nvmlDeviceGetCount()):
            uuid = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i))
            found[str(i)] = uuid.decode() if isinstance(uuid, bytes) else uuid
        return found
    finally:
        pynvml.nvmlShutdown()


def run(work: Path, log: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "app.py", "-m", *args, f"hydra.sweep.dir={work / log.stem}"], cwd=work, check=True,
                   env={**os.environ, "GPU_CHECK_LOG": str(log)})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    options = parser.parse_args()
    uuids = nvml_uuids()
    print(f"NVML devices: {uuids}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "app.py").write_text(APP)
        log = work / "auto.jsonl"
        run(work, log, "hydra/launcher=exp_gpu", f"+x=range(0,{options.jobs})")
        jobs = [json.loads(line) for line in log.read_text().splitlines()]
        ok = all(j["count"] == 1 and j["visible"] in uuids and uuids[j["visible"]].endswith(j["uuid"].replace("GPU-", "")) for j in jobs)
        print(f"gpus=auto: {len(jobs)} jobs, each saw exactly its own device: {ok}")
        for job in jobs:
            print(f"  job {job['num']}: CUDA_VISIBLE_DEVICES={job['visible']} torch sees {job['count']} device(s), uuid {job['uuid']}")
        print("| max_jobs_per_worker | wall-clock | per job | distinct worker processes |")
        print("|---|---|---|---|")
        for limit in ("null", "1"):
            log = work / f"limit-{limit}.jsonl"
            wall = run(work, log, "hydra/launcher=exp_gpu", "hydra.launcher.workers=1",
                       f"hydra.launcher.max_jobs_per_worker={limit}", f"+x=range(0,{options.jobs})")
            jobs = [json.loads(line) for line in log.read_text().splitlines()]
            print(f"| {limit} | {wall:.1f} s | {wall / len(jobs):.2f} s | {len({j['pid'] for j in jobs})} |")


if __name__ == "__main__":
    main()
