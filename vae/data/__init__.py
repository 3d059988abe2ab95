"""Data modules."""

from vae.data.mnist import MNISTDataModule, MNISTNotFoundError

__all__ = ["MNISTDataModule", "MNISTNotFoundError"]
