"""A Hydra app that records the config it received, for tests that check what jobs get."""

import json
import os

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base=None, config_path=None, config_name=None)
def main(cfg: DictConfig) -> float:
    received = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    path = os.path.join(HydraConfig.get().runtime.output_dir, "received.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(received, handle, allow_nan=True)
    return 0.0  # an objective, for optimizing sweepers


if __name__ == "__main__":
    main()
