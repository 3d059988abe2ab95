"""MNIST as a LightningDataModule: torchvision's dataset, a seeded 55,000/5,000 split, binarization."""

import os
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import transforms
from torchvision.datasets import MNIST
from torchvision.datasets.utils import extract_archive

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
BINARIZE_MODES = ("none", "static", "dynamic")


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


class Binarized(Dataset):
    """Samples each pixel of an image in [0, 1] as a Bernoulli variable.

    ``static``: the sample of image ``i`` is fixed (seeded by ``seed + i``), the same every time;
    ``dynamic``: a fresh sample each time the image is served (a regularizer for training).
    """

    def __init__(self, dataset: Dataset, mode: str, seed: int = 0) -> None:
        if mode not in ("static", "dynamic"):
            raise ValueError(f"binarize={mode!r} is not a binarization; choose 'static' or 'dynamic'")
        self.dataset, self.mode, self.seed = dataset, mode, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, y = self.dataset[index]
        generator = torch.Generator().manual_seed(self.seed + index) if self.mode == "static" else None
        return torch.bernoulli(x, generator=generator), y


class MNISTDataModule(L.LightningDataModule):
    """MNIST digits as ``(x, label)`` batches, ``x`` in [0, 1] of shape ``(B, 1, S, S)``.

    Args:
        root: folder holding ``MNIST/raw/``; default ``$VAE_DATA_DIR``, else ``data/``.
            Missing files are downloaded into it by :meth:`prepare_data`.
        cache_dir: where the archives are extracted when ``root`` holds only the ``.gz`` files;
            ``root`` itself is then never written to.
        batch_size: images per batch.
        num_workers: DataLoader worker processes.
        val_size: training images held out for validation (5,000 leaves 55,000); at least 1.
        split_seed: seed of the train/val split and of the fixed validation/test binarization,
            kept apart from the run's seed so every run of a sweep sees the same split.
        binarize: ``none`` (grey levels), ``static`` (one fixed Bernoulli sample per image)
            or ``dynamic`` (a fresh sample each time a training image is served; validation
            and test use a fixed sample so their numbers stay comparable across epochs).
        image_size: side length the 28x28 digits are resized to.
        pin_memory: pin batches in page-locked memory (faster copies to a GPU).
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike = ".cache",
        batch_size: int = 128,
        num_workers: int = 0,
        val_size: int = 5000,
        split_seed: int = 0,
        binarize: str = "none",
        image_size: int = 28,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        if binarize not in BINARIZE_MODES:
            raise ValueError(f"data.binarize={binarize!r} is not allowed; choose one of {list(BINARIZE_MODES)}")
        if isinstance(val_size, bool) or not isinstance(val_size, int) or val_size < 1:
            raise ValueError(f"data.val_size={val_size!r} must be a whole number of images, at least 1")
        self.root = Path(root or os.environ.get("VAE_DATA_DIR") or "data").expanduser().resolve()
        self.cache_dir = Path(cache_dir).expanduser().resolve()
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.val_size, self.split_seed = val_size, split_seed
        self.binarize, self.image_size = binarize, image_size
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None

    @property
    def img_shape(self) -> tuple[int, int, int]:
        return (1, self.image_size, self.image_size)

    @property
    def source_dir(self) -> Path:
        """The folder torchvision reads ``MNIST/raw/`` from.

        torchvision reads extracted files only. When ``root`` holds just the ``.gz`` archives,
        they are extracted into ``cache_dir`` instead, so a data folder the user placed (often
        shared or read-only) is never written to.
        """
        raw = self.root / "MNIST" / "raw"
        extracted = all((raw / name).is_file() for name in MNIST_FILES)
        archived = all((raw / f"{name}.gz").is_file() for name in MNIST_FILES)
        return self.cache_dir if archived and not extracted else self.root

    def prepare_data(self) -> None:
        """Makes the extracted files available; downloads into ``root`` only when nothing is there."""
        source = self.source_dir
        if source == self.cache_dir:
            cache_raw = source / "MNIST" / "raw"
            cache_raw.mkdir(parents=True, exist_ok=True)
            for name in MNIST_FILES:
                if not (cache_raw / name).is_file():
                    extract_archive(self.root / "MNIST" / "raw" / f"{name}.gz", cache_raw)
        try:
            for train in (True, False):  # no network when the files are there
                MNIST(source, train=train, download=True)
        except (RuntimeError, OSError) as err:
            raise MNISTNotFoundError(self.root, str(err).splitlines()[0]) from err

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is not None:  # every stage needs the same three datasets
            return
        steps = [transforms.ToTensor()]  # uint8 PIL -> float in [0, 1]; no Normalize: Bernoulli needs [0, 1]
        if self.image_size != 28:
            steps.append(transforms.Resize(self.image_size, antialias=True))
        transform = transforms.Compose(steps)
        train_file = MNIST(self.source_dir, train=True, transform=transform)
        test_file = MNIST(self.source_dir, train=False, transform=transform)
        if self.val_size >= len(train_file):
            raise ValueError(f"data.val_size={self.val_size} must be less than the {len(train_file)} training images")

        permutation = torch.randperm(len(train_file), generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = permutation[: self.val_size].tolist(), permutation[self.val_size :].tolist()
        train_source, eval_source, test_source = train_file, train_file, test_file
        if self.binarize != "none":
            train_source = Binarized(train_file, self.binarize, self.split_seed)
            eval_source = Binarized(train_file, "static", self.split_seed)
            # seeds past the training file's, so test image i is not binarized like training image i
            test_source = Binarized(test_file, "static", self.split_seed + len(train_file))
        self.train_dataset = Subset(train_source, train_idx)
        self.val_dataset = Subset(eval_source, val_idx)
        self.test_dataset = test_source

    def _loader(self, dataset: Dataset, shuffle: bool = False) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_dataset)
