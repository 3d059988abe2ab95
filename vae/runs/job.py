"""The folder and settings of a Hydra job, worked out before Hydra starts it: to decide about the folder
before anything is written there (the sweepers, and the check of a single run's folder)."""

import copy
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write


def job_settings(config: DictConfig) -> tuple[Path, DictConfig, dict]:
    """The job's folder, its config (without ``hydra``) and its resolved settings, as the job resolves them
    (``${hydra:...}`` values read the job's own Hydra config, as they do in the job).

    Args:
        config: the job's whole config, ``hydra`` included (a sweep's job with its ``hydra.job.num`` set).
    """
    previous = HydraConfig.instance().cfg
    config = copy.deepcopy(config)
    try:
        HydraConfig.instance().set_config(config)
        hydra = config.hydra
        if hydra.mode == RunMode.MULTIRUN:
            folder = Path(str(hydra.sweep.dir)) / str(hydra.sweep.subdir)
        else:
            folder = Path(str(hydra.run.dir))
        with read_write(hydra.runtime), open_dict(hydra.runtime):
            hydra.runtime.output_dir = os.path.abspath(folder)
        HydraConfig.instance().set_config(config)
        task_cfg = copy.deepcopy(config)
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
        return folder, task_cfg, OmegaConf.to_container(task_cfg, resolve=True)
    finally:
        if previous is not None:
            HydraConfig.instance().set_config(previous)
