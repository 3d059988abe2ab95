"""Image grids: reconstructions, samples from the prior, interpolations between test images."""

import math

import lightning as L
import torch
from torchvision.utils import make_grid

from vae.callbacks.base import VisualCallback


class Reconstructions(VisualCallback):
    """A fixed set of validation images, each row of originals followed by its reconstructions.

    Args:
        n_images: how many validation images (the first ones of the split, always the same).
        per_row: images per row.
        every_n_epochs, background: see ``VisualCallback``.
    """

    def __init__(self, n_images: int = 16, per_row: int = 8, every_n_epochs: int = 1, background: bool = False) -> None:
        super().__init__(every_n_epochs, background)
        self.n_images, self.per_row = n_images, per_row

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        x, _ = self.fixed_images(trainer.datamodule.val_dataset, self.n_images)
        x_hat = pl_module.decode_all(pl_module.encode_all(x))
        x, x_hat = self.displayable(trainer, x), self.displayable(trainer, x_hat)
        rows = [
            t for i in range(0, len(x), self.per_row) for t in (x[i : i + self.per_row], x_hat[i : i + self.per_row])
        ]
        grid = make_grid(torch.cat(rows), nrow=self.per_row, pad_value=0.5)
        self.log_image(trainer, "images/reconstructions", grid)


class PriorSamples(VisualCallback):
    """Images decoded from z ~ N(0, I), the same z at every draw so progress is comparable.

    For an auto-encoder this shows why it does not generate: nothing makes its codes look
    like draws from N(0, I).

    Args:
        n_samples: number of samples (a square number gives a square grid: 64 -> 8x8).
        seed: seed of the fixed latent draws.
        every_n_epochs, background: see ``VisualCallback``.
    """

    needs_encoder = False

    def __init__(self, n_samples: int = 64, seed: int = 0, every_n_epochs: int = 1, background: bool = False) -> None:
        super().__init__(every_n_epochs, background)
        self.n_samples, self.seed = n_samples, seed

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        z = torch.randn(self.n_samples, pl_module.latent_dim, generator=torch.Generator().manual_seed(self.seed))
        x = self.displayable(trainer, pl_module.decode_all(z))
        grid = make_grid(x, nrow=math.ceil(math.sqrt(self.n_samples)), pad_value=0.5)
        self.log_image(trainer, "images/prior_samples", grid)


class Interpolation(VisualCallback):
    """Decodes points on the line between the codes of two test images.

    Each row: the first image, ``steps`` decoded points from its code to the other's (both
    ends included), the second image. Pairs are test images (0, 1), (2, 3), ...

    Args:
        n_pairs: rows.
        steps: decoded points per row.
        every_n_epochs, background: see ``VisualCallback``.
    """

    def __init__(self, n_pairs: int = 4, steps: int = 10, every_n_epochs: int = 1, background: bool = False) -> None:
        super().__init__(every_n_epochs, background)
        self.n_pairs, self.steps = n_pairs, steps

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        x, _ = self.fixed_images(trainer.datamodule.test_dataset, 2 * self.n_pairs)
        z = pl_module.encode_all(x)  # (2P, D)
        z_a, z_b = z[0::2], z[1::2]  # (P, D) each
        t = torch.linspace(0, 1, self.steps).view(1, -1, 1)  # (1, T, 1)
        path = (1 - t) * z_a.unsqueeze(1) + t * z_b.unsqueeze(1)  # (P, T, D)
        decoded = pl_module.decode_all(path.flatten(0, 1)).unflatten(0, (len(z_a), self.steps))  # (P, T, C, H, W)
        rows = torch.cat([x[0::2].unsqueeze(1), decoded, x[1::2].unsqueeze(1)], dim=1)  # (P, T + 2, C, H, W)
        rows = self.displayable(trainer, rows)
        grid = make_grid(rows.flatten(0, 1), nrow=self.steps + 2, pad_value=0.5)
        self.log_image(trainer, "images/interpolation", grid)
