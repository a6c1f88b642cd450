"""A Hydra app whose config has its own ``id`` and ``run`` keys; it records its config and its EXP_* environment."""

import json
import os

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base=None, config_path="keys_conf", config_name="config")
def main(cfg: DictConfig) -> float:
    record = {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "env": {k: v for k, v in os.environ.items() if k in ("EXP_CONFIG_ID", "EXP_RUN")},
    }
    with open(os.path.join(HydraConfig.get().runtime.output_dir, "received.json"), "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    return 0.0


if __name__ == "__main__":
    main()
