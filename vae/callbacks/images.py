"""Image grids: reconstructions, prior samples, the VampPrior's pseudo-inputs, interpolations between test images."""

import math

import lightning as L
import torch
from torchvision.utils import make_grid

from vae.callbacks.base import VisualCallback


def paired_rows(top: torch.Tensor, bottom: torch.Tensor, per_row: int) -> torch.Tensor:
    """A grid of ``per_row`` images of ``top``, then the same of ``bottom`` below them, and so on."""
    rows = [t for i in range(0, len(top), per_row) for t in (top[i : i + per_row], bottom[i : i + per_row])]
    return make_grid(torch.cat(rows), nrow=per_row, pad_value=0.5)


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
        grid = paired_rows(self.displayable(trainer, x), self.displayable(trainer, x_hat), self.per_row)
        self.log_image(trainer, "images/reconstructions", grid)


class PriorSamples(VisualCallback):
    """Images decoded from z drawn from the model's prior (``sample_prior``: N(0, I), or the VampPrior),
    the same draws at every epoch so progress is comparable.

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
        z = pl_module.sample_prior(self.n_samples, torch.Generator().manual_seed(self.seed))
        x = self.displayable(trainer, pl_module.decode_all(z))
        grid = make_grid(x, nrow=math.ceil(math.sqrt(self.n_samples)), pad_value=0.5)
        self.log_image(trainer, "images/prior_samples", grid)


class PseudoInputs(VisualCallback):
    """The VampPrior's pseudo-inputs, what the prior has learned: rows of pseudo-inputs, each followed by
    the row of their decoded posterior means, decode(E[z | u_k]). Drawn only for a model with a VampPrior.

    Args:
        n_images: how many pseudo-inputs (the first ones).
        per_row: images per row.
        every_n_epochs, background: see ``VisualCallback``.
    """

    def __init__(self, n_images: int = 32, per_row: int = 8, every_n_epochs: int = 1, background: bool = False) -> None:
        super().__init__(every_n_epochs, background)
        self.n_images, self.per_row = n_images, per_row

    def applies(self, pl_module: L.LightningModule) -> bool:
        return getattr(pl_module, "vamp", None) is not None

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        u = pl_module.vamp.inputs[: self.n_images].detach().float().cpu()
        decoded = self.displayable(trainer, pl_module.decode_all(pl_module.encode_all(u)))
        self.log_image(
            trainer, "images/pseudo_inputs", paired_rows(self.displayable(trainer, u), decoded, self.per_row)
        )


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
