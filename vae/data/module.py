"""A dataset of 28x28 IDX files (MNIST, Fashion-MNIST, ...) as a LightningDataModule: a seeded split,
binarization, two data paths."""

import os
import random
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import transforms
from torchvision.datasets.mnist import read_image_file, read_label_file

from vae.config.schema import Binarize, DatasetSchema, Loader, Verify
from vae.config.validation import ConfigError
from vae.data.datasets import dataset_spec
from vae.data.files import ensure_files, raw_dir, source_dir
from vae.data.tensors import ImageTensors, PILImages, TensorLoader, binarize_static, resize


class ImageDataModule(L.LightningDataModule):
    """The images of ``dataset`` as ``(x, label)`` batches, ``x`` in [0, 1] of shape ``(B, 1, S, S)``.

    Two data paths give the same images. ``tensor`` keeps each split as one uint8 tensor, moved
    once to the accelerator, and serves whole batches by indexing; conversion, resizing and
    binarization run on the batch. ``torchvision`` is the classic per-image path: a
    ``DataLoader`` converting one PIL image at a time with torchvision's transforms.

    Only the ``tensor`` path continues exactly from a checkpoint saved mid-epoch (on SIGTERM): its
    loader saves how many batches of the epoch it served and skips them when restored. A
    ``DataLoader`` has no such state (its sampler's and workers' positions are not saved), so
    Lightning, with a warning, starts that epoch's batches again (a fresh shuffle in one process, the
    epoch's order under DDP) and stops after as many as the epoch had left: some images of that
    epoch are trained twice and others not at all.

    Args:
        dataset: what the dataset is (:class:`~vae.config.schema.DatasetSchema`: its folder, class
            names, pixel statistics, checksums, reference classifier): a ``data.dataset`` node, a data
            config's name (``fashion_mnist``), or None for MNIST.
        root: folder holding ``<dataset.name>/raw/``; default ``$VAE_DATA_DIR``, else ``data/``.
            Missing files are downloaded into it by :meth:`prepare_data` where the dataset says how.
        cache_dir: where the archives are extracted when ``root`` holds only the ``.gz`` files;
            ``root`` itself is then never written to.
        loader: ``tensor`` or ``torchvision`` (see above).
        batch_size: images per batch.
        num_workers: DataLoader worker processes (``torchvision`` path only).
        val_size: training images held out for validation (5,000 leaves 55,000); at least 1.
        split_seed: seed of the train/val split and of the fixed binarizations, kept apart from
            the run's seed so every run of a sweep sees the same split and the same binary images.
        seed: seed of the training order (epoch ``e`` uses ``seed + e``); None draws one (under DDP,
            every rank uses the one rank 0 drew).
        binarize: ``none`` (grey levels), ``static`` (one fixed Bernoulli sample per image)
            or ``dynamic`` (a fresh sample each time a training image is served; validation
            and test use the fixed sample so their numbers stay comparable across epochs).
        normalize: standardize pixels by the dataset's mean and deviation (for a Gaussian likelihood;
            a Bernoulli one needs pixels in [0, 1]). Pictures are mapped back with :meth:`denormalize`.
        image_size: side length the 28x28 images are resized to.
        pin_memory: pin batches in page-locked memory (``torchvision`` path only).
        verify: how the files are checked before use: ``md5`` (IDX headers, sizes and the checksums
            of the official files' content) or ``header`` (IDX headers and sizes only, for other IDX files).
    """

    def __init__(
        self,
        dataset: str | DatasetSchema | dict | None = None,
        root: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike = ".cache",
        loader: str = "tensor",
        batch_size: int = 128,
        num_workers: int = 0,
        val_size: int = 5000,
        split_seed: int = 0,
        seed: int | None = 0,
        binarize: str = "none",
        normalize: bool = False,
        image_size: int = 28,
        pin_memory: bool = False,
        verify: str = "md5",
    ) -> None:
        super().__init__()
        # the config schema's choices, checked again for a data module built in code
        settings = {"binarize": (binarize, Binarize), "loader": (loader, Loader), "verify": (verify, Verify)}
        for key, (value, choices) in settings.items():
            allowed = [str(choice) for choice in choices]
            if value not in allowed:
                raise ValueError(f"data.{key}={value!r} is not allowed; choose one of {allowed}")
        if isinstance(val_size, bool) or not isinstance(val_size, int) or val_size < 1:
            raise ValueError(f"data.val_size={val_size!r} must be a whole number of images, at least 1")
        self.dataset = dataset_spec(dataset)
        self.root = Path(root or os.environ.get("VAE_DATA_DIR") or "data").expanduser().resolve()
        self.cache_dir = Path(cache_dir).expanduser().resolve()
        self.loader, self.batch_size, self.num_workers, self.pin_memory = loader, batch_size, num_workers, pin_memory
        self.val_size, self.split_seed, self.binarize, self.image_size = val_size, split_seed, binarize, image_size
        self.normalize, self.verify = normalize, verify
        self.seed = random.randrange(2**31) if seed is None else seed
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None
        self._prepared = False
        self._on_device: dict[tuple[int, torch.device], ImageTensors] = {}

    @property
    def img_shape(self) -> tuple[int, int, int]:
        return (1, self.image_size, self.image_size)

    def prepare_data(self) -> None:
        """Makes the files available and checks them; downloads into ``root`` only when nothing is there."""
        if not self._prepared:  # train.py prepares before it builds the trainer, which prepares again
            ensure_files(self.root, self.cache_dir, self.dataset, md5=self.verify == "md5")
            self._prepared = True

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Served pixel values back in [0, 1], for pictures."""
        return x * self.dataset.std + self.dataset.mean if self.normalize else x

    @property
    def classes(self) -> list[str]:
        """The name of each label, in label order."""
        return self.dataset.classes

    @property
    def stats(self) -> tuple[float, float] | None:
        """The pixel mean and deviation served images are standardized by; None without ``normalize``."""
        return (self.dataset.mean, self.dataset.std) if self.normalize else None

    def setup(self, stage: str | None = None) -> None:
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            # Lightning starts one process per device, so seed=None drew a seed in each; their
            # shards are cut from one permutation only if every rank draws it with rank 0's seed
            self.seed = trainer.strategy.broadcast(self.seed, src=0)
        if self.train_dataset is not None:  # every stage needs the same three datasets
            return
        raw = raw_dir(source_dir(self.root, self.cache_dir, self.dataset), self.dataset)
        (train_grey, train_labels), (test_grey, test_labels) = _read_split(raw, "train"), _read_split(raw, "t10k")
        # config errors that only the data can reveal: reported like the others
        if self.val_size >= len(train_grey):
            problem = f"data.val_size={self.val_size} must be less than the {len(train_grey)} training images"
            raise ConfigError([problem])
        if (top := int(max(train_labels.max(), test_labels.max()))) >= len(self.classes):
            raise ConfigError([f"data.dataset.classes names {len(self.classes)} classes, but {raw} has label {top}"])
        permutation = torch.randperm(len(train_grey), generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = permutation[: self.val_size], permutation[self.val_size :]

        # Grey levels, or one fixed Bernoulli draw per file (the test file's seed differs, so test
        # image i is not binarized like training image i), drawn at the served size: binary images
        # resized afterwards would be grey again. Under dynamic binarization training images are
        # sampled afresh from the grey levels; validation and test keep the fixed draw.
        train_eval, test_eval = train_grey, test_grey
        if self.binarize != "none":
            train_eval = binarize_static(train_grey, self.split_seed, self.image_size)  # (N, S, S)
            test_eval = binarize_static(test_grey, self.split_seed + 1, self.image_size)
        dynamic = self.binarize == "dynamic"
        train_images = train_grey if dynamic else train_eval

        if self.loader == "tensor":
            labels, size, stats = train_labels, self.image_size, self.stats
            self.train_dataset = ImageTensors(train_images[train_idx], labels[train_idx], size, dynamic, stats)
            self.val_dataset = ImageTensors(train_eval[val_idx], labels[val_idx], size, stats=stats)
            self.test_dataset = ImageTensors(test_eval, test_labels, size, stats=stats)
        else:
            train_view = self._pil_images(train_images, train_labels, dynamic)
            self.train_dataset = Subset(train_view, train_idx.tolist())
            self.val_dataset = Subset(self._pil_images(train_eval, train_labels), val_idx.tolist())
            self.test_dataset = self._pil_images(test_eval, test_labels)

    def mean_image(self) -> torch.Tensor:
        """The mean of the training images as they are served, ``(1, S, S)``: under dynamic binarization
        their expectation, the grey levels' mean. Computed from the stored pixels, drawing nothing
        (resizing and standardizing are linear, so they commute with the mean)."""
        images = self._stored_training_images()
        total = images.reshape(len(images), -1).sum(0, dtype=torch.float64)  # uint8 summed without a float copy
        mean = (total / len(images) / 255).float().view(1, 1, *images.shape[-2:])
        return self._served(mean)[0]  # (1, S, S)

    def training_images(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` training images picked by ``seed`` (distinct while there are enough), as served but not
        sampled afresh: grey levels under dynamic binarization. ``(n, 1, S, S)``, the same on every
        process; drawing them leaves the random streams alone."""
        images = self._stored_training_images()
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
        picked = images[order.repeat(-(-n // len(images)))[:n]]  # uint8
        return self._served(picked.reshape(n, 1, *images.shape[-2:]).float() / 255)

    def _stored_training_images(self) -> torch.Tensor:
        """The training split's stored uint8 pixels."""
        if isinstance(self.train_dataset, ImageTensors):
            return self.train_dataset.images
        return self.train_dataset.dataset.data[self.train_dataset.indices]  # a Subset of PILImages

    def _served(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] ``(N, 1, H, W)`` at the served size and, under ``normalize``, standardized."""
        x = resize(x, self.image_size)
        return (x - self.dataset.mean) / self.dataset.std if self.normalize else x

    def _pil_images(self, images: torch.Tensor, labels: torch.Tensor, dynamic: bool = False) -> PILImages:
        """``images`` served one PIL image at a time through torchvision's transforms."""
        steps = [transforms.ToTensor()]  # uint8 PIL -> float in [0, 1]; no Normalize: Bernoulli needs [0, 1]
        if images.shape[-1] != self.image_size:  # fixed binary images are drawn at the served size already
            steps.append(transforms.Resize(self.image_size, antialias=True))
        if dynamic:  # after resizing, which would blur binary pixels into grey levels
            steps.append(torch.bernoulli)
        if self.normalize:
            steps.append(transforms.Normalize((self.dataset.mean,), (self.dataset.std,)))
        return PILImages(images, labels, transforms.Compose(steps))

    def _loader(self, dataset: Dataset, train: bool = False) -> DataLoader | TensorLoader:
        """Batches of ``dataset``; under DDP, this process's shard of it.

        Training shards are padded with repeated images (every process must run as many steps),
        evaluation shards are not: each validation and test image is counted once over the processes.
        """
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        if self.loader == "torchvision":
            # Lightning gives training its padded DistributedSampler, and keeps a sampler that is already one
            unpadded = world_size > 1 and not train
            sampler = UnrepeatedDistributedSampler(dataset, world_size, rank, shuffle=False) if unpadded else None
            return DataLoader(
                dataset,
                batch_size=self.batch_size,
                shuffle=train,
                sampler=sampler,
                num_workers=self.num_workers,
                persistent_workers=self.num_workers > 0,
                pin_memory=self.pin_memory,
            )
        device = trainer.strategy.root_device if trainer else torch.device("cpu")
        key = (id(dataset), device)
        if key not in self._on_device:  # each split crosses to the accelerator once
            self._on_device[key] = dataset.to(device)
        shuffle = train and not (trainer and trainer.overfit_batches)  # overfitting wants the same batches
        return TensorLoader(self._on_device[key], self.batch_size, shuffle, self.seed, rank, world_size, pad=train)

    def train_dataloader(self) -> DataLoader | TensorLoader:
        return self._loader(self.train_dataset, train=True)

    def val_dataloader(self) -> DataLoader | TensorLoader:
        return self._loader(self.val_dataset)

    def test_dataloader(self) -> DataLoader | TensorLoader:
        return self._loader(self.test_dataset)


def _read_split(raw: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The images ``(N, H, W)`` uint8 and labels ``(N,)`` of the ``train`` or ``t10k`` IDX files in ``raw``."""
    images = read_image_file(str(raw / f"{split}-images-idx3-ubyte"))
    return images, read_label_file(str(raw / f"{split}-labels-idx1-ubyte"))
