"""Callbacks: what is drawn into TensorBoard, how fast training goes and what watches it, kept out of the models."""

from vae.callbacks.checkpoint import RunCheckpoint
from vae.callbacks.checks import NonFiniteLossError, TrainingChecks
from vae.callbacks.images import Interpolation, PriorSamples, PseudoInputs, Reconstructions
from vae.callbacks.kl import KLPerDimension
from vae.callbacks.latent import LatentScatter, LatentTraversal
from vae.callbacks.projector import LatentProjector
from vae.callbacks.rng import RNGState
from vae.callbacks.scores import ValidationScores
from vae.callbacks.timing import EpochTimer

__all__ = [
    "EpochTimer",
    "Interpolation",
    "KLPerDimension",
    "LatentProjector",
    "LatentScatter",
    "LatentTraversal",
    "NonFiniteLossError",
    "PriorSamples",
    "PseudoInputs",
    "RNGState",
    "RunCheckpoint",
    "Reconstructions",
    "TrainingChecks",
    "ValidationScores",
]
