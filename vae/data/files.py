"""Finding, extracting or downloading the four MNIST files."""

import gzip
import os
import shutil
from pathlib import Path

from torchvision.datasets import MNIST

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class MNISTNotFoundError(FileNotFoundError):
    """MNIST is neither on disk nor downloadable (e.g. offline)."""

    def __init__(self, root: Path, reason: str) -> None:
        raw = root / "MNIST" / "raw"
        files = ", ".join(f"{name}.gz" for name in MNIST_FILES)
        super().__init__(
            f"MNIST is not in {raw} and could not be downloaded ({reason}).\n"
            f"Put the four files {files} (or their extracted versions) in {raw}, "
            f"or point data.root (or the VAE_DATA_DIR environment variable) at a folder that holds MNIST/raw/."
        )


def source_dir(root: Path, cache_dir: Path) -> Path:
    """The folder torchvision reads ``MNIST/raw/`` from.

    torchvision reads extracted files only. When ``root`` holds just the ``.gz`` archives, they
    are extracted into ``cache_dir`` instead, so a data folder the user placed (often shared or
    read-only) is never written to.
    """
    raw = root / "MNIST" / "raw"
    extracted = all((raw / name).is_file() for name in MNIST_FILES)
    archived = all((raw / f"{name}.gz").is_file() for name in MNIST_FILES)
    return cache_dir if archived and not extracted else root


def _extract(archive: Path, target: Path) -> None:
    """Decompresses ``archive`` into ``target`` atomically: a file that exists is complete, even
    while the jobs of a parallel sweep extract the same archive at the same time."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    with gzip.open(archive, "rb") as source, open(partial, "wb") as sink:
        shutil.copyfileobj(source, sink)
    os.replace(partial, target)


def ensure_files(root: Path, cache_dir: Path) -> Path:
    """Makes the extracted files available and returns :func:`source_dir`.

    Downloads into ``root`` only when nothing is there.

    Raises:
        MNISTNotFoundError: if the files are missing and cannot be downloaded.
    """
    source = source_dir(root, cache_dir)
    if source == cache_dir:
        cache_raw = source / "MNIST" / "raw"
        cache_raw.mkdir(parents=True, exist_ok=True)
        for name in MNIST_FILES:
            if not (cache_raw / name).is_file():
                _extract(root / "MNIST" / "raw" / f"{name}.gz", cache_raw / name)
    try:
        for train in (True, False):  # no network when the files are there
            MNIST(source, train=train, download=True)
    except (RuntimeError, OSError) as err:
        raise MNISTNotFoundError(root, str(err).splitlines()[0]) from err
    return source
