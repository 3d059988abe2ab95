"""Writes tiny IDX files in torchvision's layout, so tests never need the real datasets or a network."""

import gzip
import struct
from pathlib import Path

import numpy as np

FILES = {  # name: (is_images, is_train)
    "train-images-idx3-ubyte": (True, True),
    "train-labels-idx1-ubyte": (False, True),
    "t10k-images-idx3-ubyte": (True, False),
    "t10k-labels-idx1-ubyte": (False, False),
}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic (0, 0, type 0x08, ndim), big-endian dims, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(
    root: Path,
    n_train: int = 120,
    n_test: int = 40,
    gz: bool = False,
    seed: int = 0,
    same_images: bool = False,
    name: str = "MNIST",
    classes: int = 10,
    gzip_mtime: int = 0,
) -> Path:
    """Writes ``root/<name>/raw/`` with random 28x28 images and labels cycling 0..classes-1; returns the raw folder.

    ``same_images``: the test file starts with the same images as the training file. ``gzip_mtime``: the
    time stamp in the archives' gzip headers (archives of the same content differ in it).
    """
    rng = np.random.default_rng(seed)
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for file, (is_images, is_train) in FILES.items():
        n = n_train if is_train else n_test
        if is_images:
            image_rng = np.random.default_rng(seed) if same_images else rng  # a fresh rng repeats the images
            array = image_rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        else:
            array = np.arange(n) % classes
        data = idx_bytes(np.asarray(array))
        if gz:
            (raw / f"{file}.gz").write_bytes(gzip.compress(data, mtime=gzip_mtime))
        else:
            (raw / file).write_bytes(data)
    return raw
