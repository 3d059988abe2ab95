"""Callbacks: what is drawn into TensorBoard and how fast training goes, kept out of the models."""

from vae.callbacks.images import Interpolation, PriorSamples, Reconstructions
from vae.callbacks.kl import KLPerDimension
from vae.callbacks.latent import LatentScatter, LatentTraversal
from vae.callbacks.rng import RNGState
from vae.callbacks.timing import EpochTimer

__all__ = [
    "EpochTimer",
    "Interpolation",
    "KLPerDimension",
    "LatentScatter",
    "LatentTraversal",
    "PriorSamples",
    "RNGState",
    "Reconstructions",
]
