"""LightningModules: the VAE and the auto-encoder, sharing one base class."""

from vae.models.ae import AutoEncoder
from vae.models.base import LatentVariableModel, NonFiniteLossError
from vae.models.vae import VAE

__all__ = ["VAE", "AutoEncoder", "LatentVariableModel", "NonFiniteLossError"]
