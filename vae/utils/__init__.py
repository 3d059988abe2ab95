"""Glue between the Hydra config and a Lightning run."""

from vae.utils.checkpoints import load_model
from vae.utils.compose import compose_config
from vae.utils.hparams import HPARAM_METRICS, flat_hyperparameters, log_hyperparameters
from vae.utils.instantiate import instantiate_group

__all__ = [
    "HPARAM_METRICS",
    "compose_config",
    "flat_hyperparameters",
    "instantiate_group",
    "load_model",
    "log_hyperparameters",
]
