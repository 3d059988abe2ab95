"""The run's data module, rebuilt for the evaluation with some of its settings changed."""

import hydra
import torch
from omegaconf import DictConfig, OmegaConf


def data_module(run_cfg: DictConfig, **changes):
    """The run's data module on the tensor path, set up, with ``changes`` to its settings."""
    data = run_cfg.data
    if data.get("_target_") == "vae.data.MNISTDataModule":  # a run recorded before other datasets existed
        data = OmegaConf.merge(data, {"_target_": "vae.data.ImageDataModule"})
    datamodule = hydra.utils.instantiate(data, loader="tensor", **changes)
    datamodule.prepare_data()
    datamodule.setup()
    return datamodule


def whole(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of a tensor-path dataset in one batch, with its labels: ``(N, C, H, W)``, ``(N,)``."""
    return dataset[torch.arange(len(dataset))]
