"""Data files are checked before use; a bad file gets a message naming it, and the user's files are never changed."""

import gzip
import hashlib
from pathlib import Path

import pytest

from tests.idx import write_mnist
from vae.data import ImageDataModule
from vae.data.datasets import dataset_spec
from vae.data.files import IDX_FILES, DataFileError, ensure_files, idx_dims


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def check(root: Path, verify: str = "header", cache: Path | None = None, dataset=None) -> None:
    ImageDataModule(dataset, root=root, cache_dir=cache or root.parent / "cache", verify=verify).prepare_data()


def test_a_truncated_file_is_named_and_left_as_it_is(tmp_path):
    raw = write_mnist(tmp_path / "data")
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-1000])  # a download cut short
    before = snapshot(raw)
    with pytest.raises(DataFileError) as error:
        check(tmp_path / "data")
    message = str(error.value)
    assert str(images) in message and "truncated: 93,096 bytes where its header announces 94,096" in message
    assert "Replace it with the official file (it is left as it is)" in message
    assert snapshot(raw) == before  # nothing deleted or rewritten


def test_a_file_that_is_not_idx_is_named(tmp_path):
    raw = write_mnist(tmp_path / "data")
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(DataFileError, match=r"t10k-labels-idx1-ubyte: not an IDX file of unsigned bytes"):
        check(tmp_path / "data")


def test_images_and_labels_must_agree_in_number(tmp_path):
    raw = write_mnist(tmp_path / "data", n_train=120)
    write_mnist(tmp_path / "other", n_train=100)
    (raw / "train-labels-idx1-ubyte").write_bytes((tmp_path / "other/MNIST/raw/train-labels-idx1-ubyte").read_bytes())
    with pytest.raises(DataFileError, match=r"train-labels-idx1-ubyte: 100 labels for 120 images"):
        check(tmp_path / "data")


def test_md5_check_refuses_files_that_are_not_the_official_ones(tmp_path):
    raw = write_mnist(tmp_path / "data")
    official = r"train-images-idx3-ubyte: not the official MNIST file \(MD5 [0-9a-f]{32}, "
    with pytest.raises(DataFileError, match=official):
        check(tmp_path / "data", verify="md5")
    check(tmp_path / "data", verify="header")  # the same files pass the structural check
    assert idx_dims(raw / "train-images-idx3-ubyte") == (120, 28, 28)


def test_a_damaged_archive_is_named(tmp_path):
    raw = write_mnist(tmp_path / "data", gz=True)
    archive = raw / "t10k-images-idx3-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:200])
    for verify in ("header", "md5"):
        with pytest.raises(DataFileError, match=r"t10k-images-idx3-ubyte.gz: a damaged gzip archive"):
            check(tmp_path / "data", verify=verify)


def test_a_bad_copy_in_the_cache_is_extracted_again(tmp_path):
    raw = write_mnist(tmp_path / "data", gz=True)
    cache = tmp_path / "cache"
    check(tmp_path / "data", cache=cache)
    copy = cache / "MNIST" / "raw" / "train-images-idx3-ubyte"
    good = copy.read_bytes()
    copy.write_bytes(good[: len(good) // 2])  # e.g. a disk that filled up
    archives = snapshot(raw)
    assert ensure_files(tmp_path / "data", cache, dataset_spec(), md5=False) == cache
    assert copy.read_bytes() == good  # repaired from the archive, which is untouched
    assert snapshot(raw) == archives
    assert gzip.decompress((raw / "train-images-idx3-ubyte.gz").read_bytes()) == good


def tiny_fashion(tmp_path: Path, **kwargs) -> tuple[Path, dict]:
    """Tiny files in Fashion-MNIST's layout, and its dataset spec with their content's MD5s as the official ones."""
    raw = write_mnist(tmp_path / "extracted", name="FashionMNIST")
    spec = dataset_spec("fashion_mnist")
    spec.md5 = {name: hashlib.md5((raw / name).read_bytes()).hexdigest() for name in IDX_FILES}
    return raw, spec


def test_the_content_checksum_accepts_any_archive_of_the_official_content_and_extracted_files(tmp_path):
    raw, spec = tiny_fashion(tmp_path)
    # the same content in archives whose gzip headers differ, as Zalando's and Debian's do
    archives = [write_mnist(tmp_path / f"gz{t}", gz=True, name="FashionMNIST", gzip_mtime=t) for t in (0, 7)]
    name = "train-images-idx3-ubyte.gz"
    assert (archives[0] / name).read_bytes() != (archives[1] / name).read_bytes()
    for root in (raw.parents[1], *(archive.parents[1] for archive in archives)):
        check(root, verify="md5", cache=root / "cache", dataset=spec)
    # one changed pixel keeps sizes and headers, and is refused by the checksum, naming the file
    images = raw / "t10k-images-idx3-ubyte"
    data = bytearray(images.read_bytes())
    data[500] ^= 1
    images.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match=r"t10k-images-idx3-ubyte: not the official FashionMNIST file \(MD5"):
        check(raw.parents[1], verify="md5", dataset=spec)
    check(raw.parents[1], verify="header", dataset=spec)  # the structural check alone lets it through


def test_a_corrupted_archive_is_refused_after_extraction_naming_the_archives(tmp_path):
    _, spec = tiny_fashion(tmp_path)
    other = write_mnist(tmp_path / "other", gz=True, name="FashionMNIST", seed=1)  # valid gzip, other images
    with pytest.raises(DataFileError) as error:
        check(other.parents[1], verify="md5", cache=tmp_path / "cache", dataset=spec)
    message = str(error.value)
    assert "not the official FashionMNIST file" in message and str(other) in message
    assert "replace that with the official one" in message
