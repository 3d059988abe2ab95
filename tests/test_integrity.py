"""MNIST files are checked before use; a bad file gets a message naming it, and the user's files are never changed."""

import gzip
import hashlib
from pathlib import Path

import pytest

from tests.idx import write_mnist
from vae.data import MNISTDataModule
from vae.data.files import OFFICIAL, MNISTFileError, ensure_files, idx_dims


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def check(root: Path, verify: str = "header", cache: Path | None = None) -> None:
    MNISTDataModule(root=root, cache_dir=cache or root.parent / "cache", verify=verify).prepare_data()


def test_a_truncated_file_is_named_and_left_as_it_is(tmp_path):
    raw = write_mnist(tmp_path / "data")
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-1000])  # a download cut short
    before = snapshot(raw)
    with pytest.raises(MNISTFileError) as error:
        check(tmp_path / "data")
    message = str(error.value)
    assert str(images) in message and "truncated: 93,096 bytes where its header announces 94,096" in message
    assert "Replace it with the official file (it is left as it is)" in message
    assert snapshot(raw) == before  # nothing deleted or rewritten


def test_a_file_that_is_not_idx_is_named(tmp_path):
    raw = write_mnist(tmp_path / "data")
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(MNISTFileError, match=r"t10k-labels-idx1-ubyte: not an IDX file of unsigned bytes"):
        check(tmp_path / "data")


def test_images_and_labels_must_agree_in_number(tmp_path):
    raw = write_mnist(tmp_path / "data", n_train=120)
    write_mnist(tmp_path / "other", n_train=100)
    (raw / "train-labels-idx1-ubyte").write_bytes((tmp_path / "other/MNIST/raw/train-labels-idx1-ubyte").read_bytes())
    with pytest.raises(MNISTFileError, match=r"train-labels-idx1-ubyte: 100 labels for 120 images"):
        check(tmp_path / "data")


def test_md5_check_refuses_files_that_are_not_the_official_ones(tmp_path):
    raw = write_mnist(tmp_path / "data")
    with pytest.raises(MNISTFileError, match=r"train-images-idx3-ubyte: not the official MNIST file \(94,096 bytes"):
        check(tmp_path / "data", verify="md5")
    check(tmp_path / "data", verify="header")  # the same files pass the structural check
    assert idx_dims(raw / "train-images-idx3-ubyte") == (120, 28, 28)


def test_a_damaged_archive_is_named(tmp_path):
    raw = write_mnist(tmp_path / "data", gz=True)
    archive = raw / "t10k-images-idx3-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(MNISTFileError, match=r"t10k-images-idx3-ubyte.gz: a damaged gzip archive"):
        check(tmp_path / "data")
    with pytest.raises(MNISTFileError, match=r"t10k-images-idx3-ubyte.gz: not the official MNIST archive"):
        check(tmp_path / "data", verify="md5")  # the checksum catches it before any extraction


def test_a_bad_copy_in_the_cache_is_extracted_again(tmp_path):
    raw = write_mnist(tmp_path / "data", gz=True)
    cache = tmp_path / "cache"
    check(tmp_path / "data", cache=cache)
    copy = cache / "MNIST" / "raw" / "train-images-idx3-ubyte"
    good = copy.read_bytes()
    copy.write_bytes(good[: len(good) // 2])  # e.g. a disk that filled up
    archives = snapshot(raw)
    assert ensure_files(tmp_path / "data", cache, md5=False) == cache
    assert copy.read_bytes() == good  # repaired from the archive, which is untouched
    assert snapshot(raw) == archives
    assert gzip.decompress((raw / "train-images-idx3-ubyte.gz").read_bytes()) == good


def test_official_sizes_match_the_idx_headers():
    for name, (size, _, _) in OFFICIAL.items():
        count = 60_000 if name.startswith("train") else 10_000
        assert size == 16 + count * 784 if "images" in name else size == 8 + count
