"""LightningModules: the VAE and the auto-encoder, sharing one base class, and the GAN baseline."""

from vae.callbacks.checks import NonFiniteLossError  # raised by the callback that watches the models train
from vae.models.ae import AutoEncoder
from vae.models.base import LatentVariableModel
from vae.models.gan import GAN
from vae.models.vae import VAE

__all__ = ["GAN", "VAE", "AutoEncoder", "LatentVariableModel", "NonFiniteLossError"]
