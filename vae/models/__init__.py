"""LightningModules: the VAE, the IWAE, the two-layer HVAE and the auto-encoder, sharing one base class, and the GAN baseline."""

from vae.models.ae import AutoEncoder
from vae.models.base import LatentVariableModel
from vae.models.gan import GAN
from vae.models.hvae import HVAE
from vae.models.iwae import IWAE
from vae.models.vae import VAE

__all__ = ["GAN", "HVAE", "IWAE", "VAE", "AutoEncoder", "LatentVariableModel"]
