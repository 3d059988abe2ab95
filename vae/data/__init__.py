"""Data modules."""

from vae.data.files import MNISTNotFoundError
from vae.data.mnist import MNISTDataModule

__all__ = ["MNISTDataModule", "MNISTNotFoundError"]
