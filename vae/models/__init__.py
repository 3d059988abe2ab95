"""LightningModules: the VAE, IWAE, two-layer HVAE and auto-encoder on one base class, and the GAN baseline."""

from vae.models.ae import AutoEncoder
from vae.models.base import LatentVariableModel
from vae.models.gan import GAN
from vae.models.hvae import HVAE
from vae.models.iwae import IWAE
from vae.models.vae import VAE

__all__ = ["GAN", "HVAE", "IWAE", "VAE", "AutoEncoder", "LatentVariableModel"]
