"""Finding, extracting, checking or downloading the four IDX files of a dataset."""

import gzip
import hashlib
import importlib
import math
import os
import shutil
import struct
from pathlib import Path

from vae.config.schema import DatasetSchema

# torchvision's names for the four files, which every MNIST-like dataset keeps
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def raw_dir(root: Path, spec: DatasetSchema) -> Path:
    """Where the dataset's files are: ``<root>/<name>/raw/``, torchvision's layout."""
    return root / spec.name / "raw"


class DataNotFoundError(FileNotFoundError):
    """The dataset's files are neither on disk nor downloadable (e.g. offline)."""

    def __init__(self, root: Path, spec: DatasetSchema, reason: str) -> None:
        raw = raw_dir(root, spec)
        files = ", ".join(f"{name}.gz" for name in IDX_FILES)
        how = f" {spec.get}" if spec.get else ""
        super().__init__(
            f"{spec.name} is not in {raw} ({reason}).\n"
            f"Put the four files {files} (or their extracted versions) in {raw}, or point data.root "
            f"(or the VAE_DATA_DIR environment variable) at a folder that holds {spec.name}/raw/.{how}"
        )


class DataFileError(ValueError):
    """A data file is truncated, corrupted or not the file its name says."""

    def __init__(self, path: Path, problem: str, fix: str = "") -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}." + (f"\n{fix}" if fix else ""))


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def idx_dims(path: Path) -> tuple[int, ...]:
    """The dimensions an IDX file of unsigned bytes declares, once its size is checked against them.

    Raises:
        DataFileError: if the header is not that of an IDX file of bytes, or the size does not match.
    """
    with open(path, "rb") as file:
        head = file.read(4)
        if len(head) < 4 or head[:3] != b"\x00\x00\x08" or not 1 <= head[3] <= 3:
            raise DataFileError(path, f"not an IDX file of unsigned bytes (it starts with {head.hex() or 'nothing'})")
        dims = struct.unpack(f">{head[3]}I", file.read(4 * head[3]).ljust(4 * head[3], b"\x00"))
    expected, actual = 4 + 4 * len(dims) + math.prod(dims), path.stat().st_size
    if actual != expected:
        state = "truncated" if actual < expected else "longer than its header says"
        raise DataFileError(path, f"{state}: {actual:,} bytes where its header announces {expected:,}")
    return dims


def verify_files(raw: Path, spec: DatasetSchema, md5: bool, fix: str) -> None:
    """Checks the four extracted files in ``raw``: IDX headers, sizes, image and label counts, and
    with ``md5`` that each holds the official content (the MD5 of the extracted file, so that the
    official archives, recompressed ones and extracted files are accepted alike).

    Raises:
        DataFileError: naming the first bad file, followed by ``fix``.
    """
    for name in IDX_FILES:
        path = raw / name
        try:
            dims = idx_dims(path)
        except DataFileError as err:
            raise DataFileError(path, err.problem, fix) from None
        kind = "images" if "images" in name else "labels"
        if len(dims) != (3 if kind == "images" else 1):
            raise DataFileError(path, f"holds an array of shape {dims}, which are not {kind}", fix)
        expected = (spec.md5 or {}).get(name)
        if md5 and expected and (found := _md5(path)) != expected:
            raise DataFileError(path, f"not the official {spec.name} file (MD5 {found}, expected {expected})", fix)
    for split in ("train", "t10k"):
        images, labels = idx_dims(raw / f"{split}-images-idx3-ubyte"), idx_dims(raw / f"{split}-labels-idx1-ubyte")
        if images[0] != labels[0]:
            raise DataFileError(raw / f"{split}-labels-idx1-ubyte", f"{labels[0]} labels for {images[0]} images", fix)


def source_dir(root: Path, cache_dir: Path, spec: DatasetSchema) -> Path:
    """The folder whose ``<name>/raw/`` holds the extracted files.

    When ``root`` holds just the ``.gz`` archives, they are extracted into ``cache_dir`` instead,
    so a data folder the user placed (often shared or read-only) is never written to.
    """
    raw = raw_dir(root, spec)
    extracted = all((raw / name).is_file() for name in IDX_FILES)
    archived = all((raw / f"{name}.gz").is_file() for name in IDX_FILES)
    return cache_dir if archived and not extracted else root


def _extract(archive: Path, target: Path) -> None:
    """Decompresses ``archive`` into ``target`` atomically: a file that exists is complete, even
    while the jobs of a parallel sweep extract the same archive at the same time."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with gzip.open(archive, "rb") as source, open(partial, "wb") as sink:
            shutil.copyfileobj(source, sink)
    except (EOFError, OSError, gzip.BadGzipFile) as err:
        partial.unlink(missing_ok=True)
        raise DataFileError(archive, f"a damaged gzip archive ({err})", "Replace it with the official file.") from err
    os.replace(partial, target)


def ensure_files(root: Path, cache_dir: Path, spec: DatasetSchema, md5: bool = True) -> Path:
    """Makes the four extracted files available, checks them and returns :func:`source_dir`.

    Archives found without their extracted files are extracted into ``cache_dir`` and checked there
    (by their content's MD5 with ``md5``); a bad copy there, which this project wrote, is extracted
    again. Files in ``root`` are the user's: a bad one is reported, never deleted or overwritten.
    Downloads (where ``spec.download`` names a torchvision class) go into ``root`` only when nothing is there.

    Raises:
        DataNotFoundError: if the files are missing and cannot be downloaded.
        DataFileError: if a file is truncated, corrupted or (with ``md5``) not the official one.
    """
    source = source_dir(root, cache_dir, spec)
    if source == cache_dir:
        cache_raw = raw_dir(cache_dir, spec)
        cache_raw.mkdir(parents=True, exist_ok=True)
        archives = raw_dir(root, spec)
        for name in IDX_FILES:
            if not (cache_raw / name).is_file():
                _extract(archives / f"{name}.gz", cache_raw / name)
        fix = f"It was extracted from the archive of the same name in {archives}: replace that with the official one."
        try:
            verify_files(cache_raw, spec, md5, fix)
        except DataFileError:  # a bad copy in this project's own cache: extract everything again, once
            for name in IDX_FILES:
                _extract(archives / f"{name}.gz", cache_raw / name)
            verify_files(cache_raw, spec, md5, fix)
        return source
    if not all((raw_dir(root, spec) / name).is_file() for name in IDX_FILES):
        if not spec.download:
            raise DataNotFoundError(root, spec, "it is not downloaded: data.dataset.download is null")
        module, _, name = spec.download.rpartition(".")
        try:  # torchvision downloads all four files and extracts them beside their archives
            getattr(importlib.import_module(module), name)(root, train=True, download=True)
        except (RuntimeError, OSError) as err:
            raise DataNotFoundError(root, spec, f"the download failed: {str(err).splitlines()[0]}") from err
    verify_files(
        raw_dir(root, spec),
        spec,
        md5,
        "Replace it with the official file (it is left as it is), or move it away and let the data "
        "module download the files again.",
    )
    return source
