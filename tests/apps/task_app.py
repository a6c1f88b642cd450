"""A Hydra app for sweeper tests: records what each job received and behaves as told.

Optional keys (under ``behave``): ``fail_if`` (raise when cfg.x equals it), ``sleep`` (seconds),
``sleeps`` (a list: sleep sleeps[x] seconds),
``record`` (a file to append one JSON line per execution to: job num, config, pid, environment,
start and end times), ``result`` (``x``: return x; ``const``; ``none``; ``nan``; ``text``; a dict
key name: return {name: x}; ``big``: {"loss": x, "blob": 20 MB of text}), ``results`` (a list: return what
``result`` names for results[x]), ``exit_if`` (os._exit(3) when cfg.x equals it), ``kill_if`` (SIGKILL
itself), ``eat_if`` (hold 600 MB, then sleep 30 s: over a small SLURM memory request), ``hang_if`` (start a
child process, write its pid to the record, then sleep for an hour), ``hold_if`` (job x waits, up to 60 s,
until the file ``hold`` has at least ``hold_lines`` lines, default 0: until it exists; an event, not a race
with a sleep), ``prune`` (end as the sweep's pruner would stop it, at step 1).
"""

import json
import math
import os
import signal
import subprocess
import time

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from exp_compat import Pruned


def hold(path: str, lines: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(path, encoding="utf-8") as handle:
                if len(handle.read().splitlines()) >= lines:
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.05)


@hydra.main(version_base=None, config_path=None, config_name=None)
def main(cfg: DictConfig):
    received = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    behave = received.pop("behave", {}) or {}
    job = HydraConfig.get().job
    started = time.time()
    if behave.get("sleep"):
        time.sleep(float(behave["sleep"]))
    if behave.get("sleeps"):  # a duration per value of x
        time.sleep(float(behave["sleeps"][int(received["x"])]))
    if "hold_if" in behave and received.get("x") == behave["hold_if"]:
        hold(behave["hold"], int(behave.get("hold_lines", 0)))
    with open(os.path.join(HydraConfig.get().runtime.output_dir, "received.json"), "w", encoding="utf-8") as handle:
        json.dump(received, handle)
    x = received.get("x")
    child = None
    if "hang_if" in behave and x == behave["hang_if"]:
        child = subprocess.Popen(["sleep", "3600"]).pid
    env = {
        k: os.environ.get(k)
        for k in (
            "CUDA_VISIBLE_DEVICES",
            "EXP_WORKER_ID",
            "EXP_DEVICES",
            "EXP_TEST_EXTRA",
            "SLURM_JOB_ID",
            "SLURM_ARRAY_JOB_ID",
            "SLURM_RESTART_COUNT",
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
        )
    }
    if behave.get("record"):
        with open(behave["record"], "a", encoding="utf-8") as handle:
            handle.write(
                json.dumps(
                    {
                        "num": job.num,
                        "config": received,
                        "pid": os.getpid(),
                        "child": child,
                        "env": env,
                        "started": started,
                        "ended": time.time(),
                    }
                )
                + "\n"
            )
    if child is not None:
        time.sleep(3600)
    if "eat_if" in behave and x == behave["eat_if"]:
        held = bytearray(600 * 1024 * 1024)
        held[::4096] = b"\x01" * len(held[::4096])  # touch every page
        time.sleep(30)
    if "exit_if" in behave and x == behave["exit_if"]:
        os._exit(3)
    if "kill_if" in behave and x == behave["kill_if"]:
        os.kill(os.getpid(), signal.SIGKILL)
    if "fail_if" in behave and received.get("x") == behave["fail_if"]:
        raise ValueError(f"boom at x={received.get('x')}")
    x = received.get("x", 0)
    if behave.get("prune"):  # as if the sweep's pruner had stopped it at step 1
        raise Pruned(1, x)
    kind = behave["results"][int(x)] if behave.get("results") else behave.get("result", "x")
    if kind == "x":
        return x
    if kind == "const":
        return 1.0
    if kind == "none":
        return None
    if kind == "nan":
        return math.nan
    if kind == "text":
        return "not a number"
    if kind == "big":
        return {"loss": x, "blob": "b" * 20_000_000}
    return {kind: x, "other": 1}


if __name__ == "__main__":
    main()
