"""Images kept as one uint8 tensor and served in whole batches: no per-image Python per step."""

import math

import torch
import torch.nn.functional as F
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from PIL import Image
from torch.utils.data import Dataset, DistributedSampler, SequentialSampler


def resize(x: torch.Tensor, image_size: int) -> torch.Tensor:
    """Grey levels ``(B, 1, H, W)`` in [0, 1] resized to ``(B, 1, S, S)``, antialiased when shrinking."""
    if x.shape[-1] == image_size:
        return x
    return F.interpolate(x, size=image_size, mode="bilinear", antialias=True, align_corners=False)


def binarize_static(images: torch.Tensor, seed: int, image_size: int | None = None) -> torch.Tensor:
    """One fixed Bernoulli sample of uint8 grey-level ``images`` ``(N, H, W)``, as uint8 in {0, 255}.

    With ``image_size``, the grey levels are resized before they are sampled: resizing binary
    images would blur them back into grey levels. The result is then ``(N, S, S)``.
    """
    generator = torch.Generator().manual_seed(seed)
    if image_size is None or image_size == images.shape[-1]:  # one draw for all, as it always was
        return (torch.bernoulli(images.float() / 255, generator=generator) * 255).to(torch.uint8)
    binary = [  # in chunks: the resized grey levels of the whole set would take S*S floats an image
        torch.bernoulli(resize(chunk.unsqueeze(1).float() / 255, image_size), generator=generator)[:, 0]
        for chunk in images.split(4096)
    ]
    return (torch.cat(binary) * 255).to(torch.uint8)


class ImageTensors(Dataset):
    """Images as one uint8 tensor ``(N, 1, H, W)`` with their labels, converted when served.

    Indexing with an int gives one image ``(1, S, S)``, with a tensor of indices a whole batch
    ``(B, 1, S, S)``. Only the indexed images are converted (to float in [0, 1], resized to
    ``image_size``, with ``dynamic`` sampled as fresh Bernoulli pixels, with ``stats``
    standardized), on whatever device the tensors live on.

    Args:
        images: uint8 ``(N, H, W)`` or ``(N, 1, H, W)``.
        labels: ``(N,)`` integer labels.
        image_size: side length of the served images.
        dynamic: binarize each time an image is served (dynamic binarization).
        stats: ``(mean, std)``: subtract the pixel mean and divide by the deviation (pixels leave [0, 1]).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        image_size: int = 28,
        dynamic: bool = False,
        stats: tuple[float, float] | None = None,
    ) -> None:
        self.images = images if images.ndim == 4 else images.unsqueeze(1)  # (N, 1, H, W) uint8
        self.labels = labels
        self.image_size, self.dynamic, self.stats = image_size, dynamic, stats

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        single = isinstance(index, int)
        # index_select gathers whole images twice as fast as indexing with a tensor does (35 against 77 us for
        # 128 of 55,000 images on a 2-core CPU: benchmarks/step_costs.py)
        rows = torch.as_tensor([index] if single else index, device=self.images.device)
        x = resize(self.images.index_select(0, rows).float().div_(255), self.image_size)  # (B, 1, S, S)
        if self.dynamic:  # after resizing, which would blur binary pixels into grey levels
            x = torch.bernoulli(x)
        if self.stats:
            x = x.sub_(self.stats[0]).div_(self.stats[1])
        return (x[0], self.labels[index]) if single else (x, self.labels[index])

    def to(self, device: torch.device) -> "ImageTensors":
        """The same images on ``device``."""
        images, labels = self.images.to(device), self.labels.to(device)
        return ImageTensors(images, labels, self.image_size, self.dynamic, self.stats)


class PILImages(Dataset):
    """uint8 images ``(N, H, W)`` served one at a time as torchvision datasets serve them: a PIL image
    through ``transform``, with its label as an int."""

    def __init__(self, data: torch.Tensor, targets: torch.Tensor, transform) -> None:
        self.data, self.targets, self.transform = data, targets, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.data[index].numpy(), mode="L")), int(self.targets[index])


class TensorLoader:
    """Serves an :class:`ImageTensors` in batches, indexing one batch at a time.

    Each epoch's order comes from a ``DistributedSampler`` over the indices: a permutation seeded
    by ``seed + epoch`` (Lightning calls ``sampler.set_epoch``, also when it resumes a run), cut
    into this process's shard when there are several. Training shards are padded with repeated
    images so that every process runs the same number of steps; evaluation shards are not, so
    that every image counts once. One process without shuffling serves the indices in order.

    The loader is stateful (Lightning saves :meth:`state_dict` in every checkpoint): it counts the
    batches of the current epoch it has served, and after :meth:`load_state_dict` its next
    iteration skips that many batches of the same epoch's order, so that a run resumed from a
    checkpoint saved mid-epoch (on SIGTERM) trains on the batches an unbroken run would have.
    Skipped batches are not converted, so they draw no random numbers (dynamic binarization).

    Args:
        dataset: the images, on the device the batches should be on.
        batch_size: images per batch (the last batch may be smaller).
        shuffle: a new order each epoch; otherwise the dataset's order.
        seed: seed of the orders.
        rank, world_size: this process's place among the data-parallel processes.
        pad: pad the shards to equal lengths (training); otherwise (evaluation, unshuffled) their
            lengths differ by one image at most.
    """

    def __init__(
        self,
        dataset: ImageTensors,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        pad: bool = True,
    ) -> None:
        # not `dataset`: Lightning would take this for a DataLoader and try to rebuild it
        self.images, self.batch_size = dataset, batch_size
        indices = range(len(dataset))
        if world_size > 1 and not pad:
            if shuffle:  # Lightning's unpadded sampler would shuffle by the epoch alone, not by seed
                raise ValueError("unpadded shards are for evaluation, which serves the dataset's order")
            self.sampler = UnrepeatedDistributedSampler(indices, world_size, rank, shuffle=False)
        elif shuffle or world_size > 1:
            self.sampler = DistributedSampler(indices, world_size, rank, shuffle=shuffle, seed=seed)
        else:  # the sampler Lightning recognizes as unshuffled (e.g. when overfitting)
            self.sampler = SequentialSampler(indices)
        self.batch_sampler = None  # Lightning looks for one beside `sampler`
        self._served = 0  # batches of the current epoch handed out
        self._skip = 0  # batches the next iteration skips: those a restored run had served

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)  # the whole epoch, also when resuming mid-epoch

    def __iter__(self):
        # The skip belongs to the first iterator made after load_state_dict, taken now: when a restored
        # epoch is already over, Lightning makes that iterator but never advances it, and the next
        # epoch's iterator must be whole.
        skip, self._skip = self._skip, 0
        self._served = skip
        return self._batches(skip)

    def _batches(self, skip: int):
        # The order is drawn at the first batch, not in __iter__: Lightning makes the iterator of a
        # resumed epoch before it calls sampler.set_epoch.
        order = torch.tensor(list(self.sampler), device=self.images.labels.device)
        for index in order.split(self.batch_size)[skip:]:
            self._served += 1  # before the yield: the batch counts once it is handed out
            yield self.images[index]

    def state_dict(self) -> dict[str, int]:
        """How many batches of the current epoch were served (saved in checkpoints by Lightning)."""
        return {"served": self._served}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Makes the next iteration skip the batches a saved run had served of its epoch."""
        self._skip = state_dict["served"]
