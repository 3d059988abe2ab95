"""The MNIST DataModule on tiny IDX files the tests write themselves (no network)."""

from pathlib import Path

import pytest
import torch
from torchvision.datasets import MNIST

from tests.idx import write_mnist
from vae.data import MNISTDataModule, MNISTNotFoundError
from vae.data.mnist import MNIST_FILES


def ready(root: Path, **kwargs) -> MNISTDataModule:
    datamodule = MNISTDataModule(root=root, val_size=20, batch_size=8, **kwargs)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def images(dataset) -> torch.Tensor:
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


def test_split_sizes_and_seeded_disjoint_split(mnist_root):
    a, b = ready(mnist_root), ready(mnist_root)
    assert (len(a.train_dataset), len(a.val_dataset), len(a.test_dataset)) == (100, 20, 40)
    assert set(a.train_dataset.indices).isdisjoint(a.val_dataset.indices)
    assert a.val_dataset.indices == b.val_dataset.indices  # same split_seed, same split
    assert ready(mnist_root, split_seed=1).val_dataset.indices != a.val_dataset.indices


def test_batches_are_images_in_unit_range_with_labels(mnist_root):
    x, y = next(iter(ready(mnist_root).train_dataloader()))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1
    assert len(torch.unique(x)) > 2  # grey levels: no normalization, no binarization
    assert y.dtype == torch.int64


def test_static_binarization_is_fixed(mnist_root):
    datamodule = ready(mnist_root, binarize="static")
    first = images(datamodule.train_dataset)
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(first, images(datamodule.train_dataset))


def test_static_binarization_draws_differ_between_training_and_test_images(tmp_path):
    # identical grey images in both files: only the random draws can tell them apart
    write_mnist(tmp_path, n_train=30, n_test=30, same_images=True)
    datamodule = ready(tmp_path, binarize="static")
    train_file = datamodule.val_dataset.dataset  # the fixed-binarized view of the training file
    assert not torch.equal(train_file[0][0], datamodule.test_dataset[0][0])


def test_dynamic_binarization_resamples_training_images_only(mnist_root):
    datamodule = ready(mnist_root, binarize="dynamic")
    first, second = images(datamodule.train_dataset), images(datamodule.train_dataset)
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(first, second)
    assert torch.equal(images(datamodule.val_dataset), images(datamodule.val_dataset))
    assert torch.equal(images(datamodule.test_dataset), images(datamodule.test_dataset))


def test_binarization_samples_the_grey_levels(mnist_root):
    torch.manual_seed(0)
    grey = images(ready(mnist_root).train_dataset)
    dynamic = ready(mnist_root, binarize="dynamic").train_dataset
    mean = torch.stack([images(dynamic) for _ in range(200)]).mean(0)
    # E[Bernoulli(p)] = p: over 200 samples a pixel's mean strays ~0.022 from its grey level on
    # average; a wrong probability (e.g. a 0.5 threshold or 1 - p) would stray by ~0.25
    assert (mean - grey).abs().mean() < 0.035


def test_images_can_be_resized(mnist_root):
    datamodule = ready(mnist_root, image_size=32)
    assert datamodule.img_shape == (1, 32, 32)
    assert datamodule.train_dataset[0][0].shape == (1, 32, 32)


def test_archives_alone_are_extracted_into_the_cache_never_beside_them(tmp_path):
    raw = write_mnist(tmp_path / "shared", gz=True)
    before = {p.name: p.stat().st_mtime_ns for p in raw.iterdir()}
    datamodule = ready(tmp_path / "shared", cache_dir=tmp_path / "cache")
    assert datamodule.source_dir == tmp_path / "cache"
    assert all((tmp_path / "cache" / "MNIST" / "raw" / name).is_file() for name in MNIST_FILES)
    assert {p.name: p.stat().st_mtime_ns for p in raw.iterdir()} == before  # nothing added or touched
    assert len(datamodule.test_dataset) == 40


def test_missing_files_offline_give_one_clear_message(tmp_path, monkeypatch):
    # a mirror that refuses at once stands in for "no internet"
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    datamodule = MNISTDataModule(root=tmp_path / "empty")
    with pytest.raises(MNISTNotFoundError) as error:
        datamodule.prepare_data()
    message = str(error.value)
    assert str(tmp_path / "empty" / "MNIST" / "raw") in message
    assert all(f"{name}.gz" in message for name in MNIST_FILES)
    assert "VAE_DATA_DIR" in message


def test_root_defaults_to_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "from_env"))
    assert MNISTDataModule().root == tmp_path / "from_env"
    monkeypatch.delenv("VAE_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert MNISTDataModule().root == tmp_path / "data"


def test_bad_settings_are_refused(mnist_root):
    with pytest.raises(ValueError, match="data.binarize='threshold'"):
        MNISTDataModule(root=mnist_root, binarize="threshold")
    with pytest.raises(ValueError, match="data.val_size=500 must be less than the 120 training images"):
        MNISTDataModule(root=mnist_root, val_size=500).setup()
    for bad in (0, 0.1, "10"):
        with pytest.raises(ValueError, match=f"data.val_size={bad!r} must be a whole number"):
            MNISTDataModule(root=mnist_root, val_size=bad)
