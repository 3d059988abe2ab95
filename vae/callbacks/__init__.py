"""Visual callbacks: everything drawn from a model lives here, not in the LightningModules."""

from vae.callbacks.images import Interpolation, PriorSamples, Reconstructions
from vae.callbacks.kl import KLPerDimension
from vae.callbacks.latent import LatentScatter, LatentTraversal

__all__ = ["Interpolation", "KLPerDimension", "LatentScatter", "LatentTraversal", "PriorSamples", "Reconstructions"]
