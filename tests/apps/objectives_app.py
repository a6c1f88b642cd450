"""A Hydra app with two objectives in tension, for exp_gopt's multi-objective tests.

``loss = x`` and ``latency_ms = (1 - x)**2 + y`` over x, y >= 0: the Pareto front is y = 0, x in [0, 1].
``form`` says how it returns them: ``list`` ([loss, latency_ms]), ``array`` (a numpy array), ``dict``
({"loss", "latency_ms", "size": x + y, "accuracy": 1 - loss}); ``bad`` returns, by the whole part of x:
0 a list of one value, 1 a dict without latency_ms, 2 text, 3 [loss, nan], 4 a dict whose size is text,
anything else the list; ``named`` returns a dict under names that the sweep's own columns have too ({"error": loss,
"duration_s": latency_ms, "status": size, then "feasible", "steps", "job_num", "id", "run", "evaluation" and
"result": 0 + x, 1 + x, ...}). ``sleep`` (seconds) makes each job take that long; ``record`` (a file) gets one
JSON line per job run, with its x and y.
"""

import json
import math
import time

import hydra
import numpy as np
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path=None, config_name=None)
def main(cfg: DictConfig):
    x, y = float(cfg.x), float(cfg.get("y", 0.0))
    if cfg.get("record"):
        with open(cfg.record, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"x": x, "y": y}) + "\n")
    if cfg.get("sleep"):
        time.sleep(float(cfg.sleep))
    loss, latency = x, (1 - x) ** 2 + y
    named = {"loss": loss, "latency_ms": latency, "size": x + y, "accuracy": 1 - loss}
    form = cfg.get("form", "list")
    if form == "array":
        return np.array([loss, latency])
    if form == "dict":
        return named
    if form == "named":
        own = ("feasible", "steps", "job_num", "id", "run", "evaluation", "result")
        return {"error": loss, "duration_s": latency, "status": x + y, **{name: i + x for i, name in enumerate(own)}}
    if form == "bad":
        bad = {0: [loss], 1: {"loss": loss}, 2: "text", 3: [loss, math.nan], 4: {**named, "size": "big"}}
        return bad.get(int(x), [loss, latency])
    return [loss, latency]


if __name__ == "__main__":
    main()
