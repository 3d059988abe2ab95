"""The training config composed outside a Hydra app: for tests, benchmarks and notebooks."""

import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_config(overrides: list[str], output_dir: str | os.PathLike) -> DictConfig:
    """``conf/train.yaml`` as ``python train.py <overrides>`` composes it, writing into ``output_dir``.

    As in a Hydra app, ``${hydra:...}`` values resolve from the registered Hydra config and the
    returned config has no ``hydra`` node.
    """
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name="train", return_hydra_config=True, overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = cfg.hydra.runtime.output_dir = str(Path(output_dir).resolve())
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
