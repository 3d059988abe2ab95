"""The MNIST DataModule on tiny IDX files the tests write themselves (no network)."""

import copy
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DistributedSampler
from torchvision.datasets import MNIST

from tests.idx import write_mnist
from vae.config.schema import Verify
from vae.data import DataNotFoundError, ImageDataModule
from vae.data.files import IDX_FILES
from vae.data.tensors import ImageTensors, TensorLoader

LOADERS = ["tensor", "torchvision"]


def ready(root: Path, **kwargs) -> ImageDataModule:
    datamodule = ImageDataModule(root=root, val_size=20, batch_size=8, verify="header", **kwargs)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def images(dataset) -> torch.Tensor:
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


def served(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


@pytest.mark.parametrize("loader", LOADERS)
def test_split_sizes_and_seeded_disjoint_split(mnist_root, loader):
    a = ready(mnist_root, loader=loader)
    assert (len(a.train_dataset), len(a.val_dataset), len(a.test_dataset)) == (100, 20, 40)
    other = ready(mnist_root, loader=loader, split_seed=1)
    assert not torch.equal(images(a.val_dataset), images(other.val_dataset))


@pytest.mark.parametrize("binarize", ["none", "static", "dynamic"])
def test_both_loaders_serve_the_same_split_and_images(mnist_root, binarize):
    tensor, torchvision = (ready(mnist_root, loader=loader, binarize=binarize) for loader in LOADERS)
    for split in ("val_dataset", "test_dataset") + (() if binarize == "dynamic" else ("train_dataset",)):
        assert torch.equal(images(getattr(tensor, split)), images(getattr(torchvision, split)))
        labels = [[int(getattr(dm, split)[i][1]) for i in range(8)] for dm in (tensor, torchvision)]
        assert labels[0] == labels[1]


@pytest.mark.parametrize("loader", LOADERS)
def test_batches_are_images_in_unit_range_with_labels(mnist_root, loader):
    x, y = next(iter(ready(mnist_root, loader=loader).train_dataloader()))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1
    assert len(torch.unique(x)) > 2  # grey levels: no normalization, no binarization
    assert y.dtype == torch.int64


def test_every_training_image_is_served_once_per_epoch(mnist_root):
    datamodule = ready(mnist_root)
    loader = datamodule.train_dataloader()
    assert isinstance(loader, TensorLoader) and len(loader) == 13  # ceil(100 / 8)
    x, _ = served(loader)
    expected = images(datamodule.train_dataset)
    assert len(x) == 100
    # the same 100 images, each once: sort both sets the same way and compare
    key = lambda t: t.flatten(1).mul(255).round().long() @ torch.arange(784).pow(2)  # noqa: E731
    assert torch.equal(key(x).sort().values, key(expected).sort().values)


def ids(n: int) -> ImageTensors:
    """Images whose pixels all hold their own index, so a served batch tells which images it holds."""
    return ImageTensors(torch.arange(n, dtype=torch.uint8).view(n, 1, 1).expand(n, 28, 28), torch.arange(n))


def order(loader: TensorLoader, epoch: int) -> list[int]:
    if hasattr(loader.sampler, "set_epoch"):  # as Lightning does at the start of each epoch
        loader.sampler.set_epoch(epoch)
    return [int(i) for x, _ in loader for i in (x[:, 0, 0, 0] * 255).round()]


def test_shuffling_differs_by_epoch_and_is_reproducible_by_seed():
    loader = TensorLoader(ids(50), batch_size=8, shuffle=True, seed=3)
    first, second = order(loader, 0), order(loader, 1)
    assert sorted(first) == sorted(second) == list(range(50))
    assert first != second
    assert order(TensorLoader(ids(50), batch_size=8, shuffle=True, seed=3), 0) == first
    assert order(TensorLoader(ids(50), batch_size=8, shuffle=True, seed=4), 0) != first
    assert order(TensorLoader(ids(50), batch_size=8), 5) == list(range(50))  # no shuffle: dataset order


def test_data_parallel_ranks_get_disjoint_shards_covering_the_set():
    shards = [order(TensorLoader(ids(50), 8, shuffle=True, seed=0, rank=r, world_size=2), epoch=2) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 25
    assert set(shards[0]).isdisjoint(shards[1])
    assert set(shards[0]) | set(shards[1]) == set(range(50))
    # uneven: padded with repeats so both processes serve as many batches
    uneven = [TensorLoader(ids(51), 8, shuffle=True, rank=r, world_size=2) for r in (0, 1)]
    assert len(uneven[0]) == len(uneven[1]) == 4
    assert set(order(uneven[0], 0)) | set(order(uneven[1], 0)) == set(range(51))


def as_rank(datamodule: ImageDataModule, rank: int, world_size: int) -> ImageDataModule:
    """A copy of ``datamodule`` as the process of ``rank`` holds it under DDP (what its loaders read of the trainer)."""
    datamodule = copy.copy(datamodule)
    strategy = SimpleNamespace(root_device=torch.device("cpu"), broadcast=lambda value, src=0: value)
    datamodule.trainer = SimpleNamespace(global_rank=rank, world_size=world_size, strategy=strategy, overfit_batches=0)
    return datamodule


def keys(x: torch.Tensor) -> list[bytes]:
    """Each served image as bytes: the tiny files' random images are all distinct."""
    return [bytes(image.flatten().tolist()) for image in x.mul(255).round().to(torch.uint8)]


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("world_size", [2, 3])
def test_evaluation_shards_serve_every_image_exactly_once_over_the_ranks(tmp_path, loader, world_size):
    # 21 validation and 41 test images divide evenly among neither 2 nor 3 ranks
    write_mnist(tmp_path, n_train=60, n_test=41)
    datamodule = ImageDataModule(root=tmp_path, val_size=21, batch_size=4, loader=loader, verify="header")
    datamodule.setup()
    ranks = [as_rank(datamodule, rank, world_size) for rank in range(world_size)]
    for split in ("val", "test"):
        loaders = [getattr(dm, f"{split}_dataloader")() for dm in ranks]
        if loader == "torchvision":  # Lightning replaces a sampler that is not already distributed
            assert all(isinstance(loader.sampler, DistributedSampler) for loader in loaders)
        position = {key: i for i, key in enumerate(keys(images(getattr(datamodule, f"{split}_dataset"))))}
        shards = [[position[key] for key in keys(served(loader)[0])] for loader in loaders]
        assert sorted(sum(shards, [])) == list(range(len(position)))  # no image repeated, none left out
    # training keeps padded shards: every rank must run as many steps
    if loader == "tensor":
        assert len({len(served(dm.train_dataloader())[0]) for dm in ranks}) == 1


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("binarize", ["static", "dynamic"])
def test_binarized_images_stay_binary_when_resized(mnist_root, loader, binarize):
    datamodule = ready(mnist_root, image_size=32, loader=loader, binarize=binarize)
    splits = ("val_dataset", "test_dataset", "train_dataset")
    for x in [images(getattr(datamodule, split)) for split in splits] + [served(datamodule.val_dataloader())[0]]:
        assert x.shape[1:] == (1, 32, 32)
        assert set(x.unique().tolist()) == {0.0, 1.0}
    # a sample of the resized grey levels, the same on both paths
    grey = images(ready(mnist_root, image_size=32).val_dataset)
    assert images(datamodule.val_dataset).mean().item() == pytest.approx(grey.mean().item(), abs=0.01)
    other = ready(mnist_root, image_size=32, loader=next(o for o in LOADERS if o != loader), binarize=binarize)
    for split in splits[: 3 if binarize == "static" else 2]:
        assert torch.equal(images(getattr(datamodule, split)), images(getattr(other, split)))


@pytest.mark.parametrize("loader", LOADERS)
def test_static_binarization_is_fixed(mnist_root, loader):
    datamodule = ready(mnist_root, binarize="static", loader=loader)
    first = images(datamodule.train_dataset)
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(first, images(datamodule.train_dataset))


def test_static_binarization_draws_differ_between_training_and_test_images(tmp_path):
    # identical grey images in both files: only the random draws can tell them apart
    write_mnist(tmp_path, n_train=30, n_test=30, same_images=True)
    datamodule = ImageDataModule(root=tmp_path, val_size=29, binarize="static", split_seed=0, verify="header")
    datamodule.setup()
    train_file_order = torch.randperm(30, generator=torch.Generator().manual_seed(0))
    first_val = int(train_file_order[0])  # the training-file index of validation image 0
    assert not torch.equal(datamodule.val_dataset[0][0], datamodule.test_dataset[first_val][0])


@pytest.mark.parametrize("loader", LOADERS)
def test_dynamic_binarization_resamples_training_images_only(mnist_root, loader):
    datamodule = ready(mnist_root, binarize="dynamic", loader=loader)
    first, second = images(datamodule.train_dataset), images(datamodule.train_dataset)
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(first, second)
    assert torch.equal(images(datamodule.val_dataset), images(datamodule.val_dataset))
    assert torch.equal(images(datamodule.test_dataset), images(datamodule.test_dataset))


@pytest.mark.parametrize("loader", LOADERS)
def test_binarization_samples_the_grey_levels(mnist_root, loader):
    torch.manual_seed(0)
    grey = images(ready(mnist_root, loader=loader).train_dataset)
    dynamic = ready(mnist_root, binarize="dynamic", loader=loader).train_dataset
    mean = torch.stack([images(dynamic) for _ in range(200)]).mean(0)
    # E[Bernoulli(p)] = p: over 200 samples a pixel's mean strays ~0.022 from its grey level on
    # average; a wrong probability (e.g. a 0.5 threshold or 1 - p) would stray by ~0.25
    assert (mean - grey).abs().mean() < 0.035


def test_batch_binarization_statistics_match_the_grey_levels(mnist_root):
    torch.manual_seed(0)
    datamodule = ready(mnist_root, binarize="dynamic")
    binary = torch.stack([served(datamodule.train_dataloader())[0] for _ in range(200)])
    assert set(binary.unique().tolist()) == {0.0, 1.0}
    # every epoch serves all training images: their mean pixel must match the grey-level mean
    train_grey = images(ready(mnist_root).train_dataset)
    assert binary.mean().item() == pytest.approx(train_grey.mean().item(), abs=0.002)


@pytest.mark.parametrize("loader", LOADERS)
def test_images_can_be_resized(mnist_root, loader):
    datamodule = ready(mnist_root, image_size=32, loader=loader)
    assert datamodule.img_shape == (1, 32, 32)
    assert datamodule.train_dataset[0][0].shape == (1, 32, 32)
    assert next(iter(datamodule.train_dataloader()))[0].shape == (8, 1, 32, 32)


def test_resizing_agrees_between_the_loaders(mnist_root):
    tensor, torchvision = (ready(mnist_root, image_size=32, loader=loader) for loader in LOADERS)
    # PIL and torch resample a little differently; both must give the same picture
    assert (images(tensor.val_dataset) - images(torchvision.val_dataset)).abs().mean() < 0.01


def test_archives_alone_are_extracted_into_the_cache_never_beside_them(tmp_path):
    raw = write_mnist(tmp_path / "shared", gz=True)
    before = {p.name: p.stat().st_mtime_ns for p in raw.iterdir()}
    datamodule = ready(tmp_path / "shared", cache_dir=tmp_path / "cache")
    assert all((tmp_path / "cache" / "MNIST" / "raw" / name).is_file() for name in IDX_FILES)
    assert {p.name: p.stat().st_mtime_ns for p in raw.iterdir()} == before  # nothing added or touched
    assert len(datamodule.test_dataset) == 40


def test_missing_files_offline_give_one_clear_message(tmp_path, monkeypatch):
    # a mirror that refuses at once stands in for "no internet"
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    datamodule = ImageDataModule(root=tmp_path / "empty")
    with pytest.raises(DataNotFoundError) as error:
        datamodule.prepare_data()
    message = str(error.value)
    assert str(tmp_path / "empty" / "MNIST" / "raw") in message
    assert all(f"{name}.gz" in message for name in IDX_FILES)
    assert "VAE_DATA_DIR" in message


def test_root_defaults_to_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "from_env"))
    assert ImageDataModule().root == tmp_path / "from_env"
    monkeypatch.delenv("VAE_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert ImageDataModule().root == tmp_path / "data"


def test_bad_settings_are_refused(mnist_root):
    with pytest.raises(ValueError, match="data.binarize='threshold'"):
        ImageDataModule(root=mnist_root, binarize="threshold")
    with pytest.raises(ValueError, match="data.loader='numpy'"):
        ImageDataModule(root=mnist_root, loader="numpy")
    choices = [str(choice) for choice in Verify]  # the schema's, the one list of them
    with pytest.raises(ValueError, match=re.escape(f"data.verify='sha1' is not allowed; choose one of {choices}")):
        ImageDataModule(root=mnist_root, verify="sha1")
    with pytest.raises(ValueError, match="data.val_size=500 must be less than the 120 training images"):
        ImageDataModule(root=mnist_root, val_size=500).setup()
    for bad in (0, 0.1, "10"):
        with pytest.raises(ValueError, match=f"data.val_size={bad!r} must be a whole number"):
            ImageDataModule(root=mnist_root, val_size=bad)
