"""Data modules."""

from vae.data.files import DataFileError, DataNotFoundError
from vae.data.module import ImageDataModule

__all__ = ["DataFileError", "DataNotFoundError", "ImageDataModule"]
