"""Finding, extracting or downloading the four MNIST files."""

import gzip
import hashlib
import math
import os
import shutil
import struct
from pathlib import Path

from torchvision.datasets import MNIST

# name: (size in bytes, MD5 of the extracted file, MD5 of the .gz archive as torchvision lists it)
OFFICIAL = {
    "train-images-idx3-ubyte": (47_040_016, "6bbc9ace898e44ae57da46a324031adb", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte": (60_008, "a25bea736e30d166cdddb491f175f624", "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte": (7_840_016, "2646ac647ad5339dbf082846283269ea", "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte": (10_008, "27ae3e4e09519cfbb04c329615203637", "ec29112dd5afa0611ce80d1b7f02629c"),
}
MNIST_FILES = tuple(OFFICIAL)


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


class MNISTFileError(ValueError):
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
        MNISTFileError: if the header is not that of an IDX file of bytes, or the size does not match.
    """
    with open(path, "rb") as file:
        head = file.read(4)
        if len(head) < 4 or head[:3] != b"\x00\x00\x08" or not 1 <= head[3] <= 3:
            raise MNISTFileError(path, f"not an IDX file of unsigned bytes (it starts with {head.hex() or 'nothing'})")
        dims = struct.unpack(f">{head[3]}I", file.read(4 * head[3]).ljust(4 * head[3], b"\x00"))
    expected, actual = 4 + 4 * len(dims) + math.prod(dims), path.stat().st_size
    if actual != expected:
        state = "truncated" if actual < expected else "longer than its header says"
        raise MNISTFileError(path, f"{state}: {actual:,} bytes where its header announces {expected:,}")
    return dims


def verify_files(raw: Path, md5: bool, fix: str) -> None:
    """Checks the four extracted files in ``raw``: IDX headers, sizes, image and label counts, and
    with ``md5`` that each is the official file.

    Raises:
        MNISTFileError: naming the first bad file, followed by ``fix``.
    """
    for name, (size, checksum, _) in OFFICIAL.items():
        path = raw / name
        try:
            dims = idx_dims(path)
        except MNISTFileError as err:
            raise MNISTFileError(path, err.problem, fix) from None
        kind = "images" if "images" in name else "labels"
        if len(dims) != (3 if kind == "images" else 1):
            raise MNISTFileError(path, f"holds an array of shape {dims}, which are not {kind}", fix)
        if md5 and (actual := path.stat().st_size) != size:
            raise MNISTFileError(path, f"not the official MNIST file ({actual:,} bytes, expected {size:,})", fix)
        if md5 and (found := _md5(path)) != checksum:
            raise MNISTFileError(path, f"not the official MNIST file (MD5 {found}, expected {checksum})", fix)
    for split in ("train", "t10k"):
        images, labels = idx_dims(raw / f"{split}-images-idx3-ubyte"), idx_dims(raw / f"{split}-labels-idx1-ubyte")
        if images[0] != labels[0]:
            raise MNISTFileError(raw / f"{split}-labels-idx1-ubyte", f"{labels[0]} labels for {images[0]} images", fix)


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
    try:
        with gzip.open(archive, "rb") as source, open(partial, "wb") as sink:
            shutil.copyfileobj(source, sink)
    except (EOFError, OSError, gzip.BadGzipFile) as err:
        partial.unlink(missing_ok=True)
        raise MNISTFileError(archive, f"a damaged gzip archive ({err})", "Replace it with the official file.") from err
    os.replace(partial, target)


def ensure_files(root: Path, cache_dir: Path, md5: bool = True) -> Path:
    """Makes the four extracted files available, checks them and returns :func:`source_dir`.

    Archives found without their extracted files are checked (MD5 when ``md5``) and extracted into
    ``cache_dir``; a bad copy there, which this project wrote, is extracted again. Files in
    ``root`` are the user's: a bad one is reported, never deleted or overwritten. Downloads go into
    ``root`` only when nothing is there.

    Raises:
        MNISTNotFoundError: if the files are missing and cannot be downloaded.
        MNISTFileError: if a file is truncated, corrupted or (with ``md5``) not the official one.
    """
    source = source_dir(root, cache_dir)
    if source == cache_dir:
        cache_raw = source / "MNIST" / "raw"
        cache_raw.mkdir(parents=True, exist_ok=True)
        _extract_archives(root, cache_raw, md5, [n for n in MNIST_FILES if not (cache_raw / n).is_file()])
        fix = f"It was extracted from the archives in {root / 'MNIST' / 'raw'}; check those."
        try:
            verify_files(cache_raw, md5, fix)
        except MNISTFileError:  # a bad copy in this project's own cache: extract everything again, once
            _extract_archives(root, cache_raw, md5, MNIST_FILES)
            verify_files(cache_raw, md5, fix)
        return source
    if not all((root / "MNIST" / "raw" / name).is_file() for name in MNIST_FILES):
        try:  # torchvision downloads all four files and extracts them beside their archives
            MNIST(root, train=True, download=True)
        except (RuntimeError, OSError) as err:
            raise MNISTNotFoundError(root, str(err).splitlines()[0]) from err
    verify_files(
        root / "MNIST" / "raw",
        md5,
        "Replace it with the official file (it is left as it is), or move it away and let the data "
        "module download the files again.",
    )
    return source


def _extract_archives(root: Path, cache_raw: Path, md5: bool, names) -> None:
    for name in names:
        archive = root / "MNIST" / "raw" / f"{name}.gz"
        if md5 and (found := _md5(archive)) != OFFICIAL[name][2]:
            raise MNISTFileError(
                archive,
                f"not the official MNIST archive (MD5 {found}, expected {OFFICIAL[name][2]})",
                f"The download is corrupt or incomplete: replace {archive.name} with the official file.",
            )
        _extract(archive, cache_raw / name)
