"""The per-dimension KL of the last validation epoch as a bar chart and a histogram."""

import lightning as L
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vae.callbacks.base import VisualCallback

PREFIX = "val/kl_per_dim/"


class KLPerDimension(VisualCallback):
    """Bars of KL(q(z_d | x) || p(z_d)) per latent dimension d, averaged over the validation set.

    Reads the ``val/kl_per_dim/*`` values the model logged; draws nothing for a model with no
    KL term (an auto-encoder). Dimensions near 0 nats are unused by the model.
    """

    def __init__(self, every_n_epochs: int = 1, background: bool = False) -> None:
        super().__init__(every_n_epochs, background)
        self._saved: dict[str, float] = {}  # the validation values of the checkpoint a run resumes from

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        # what a draw again of the checkpoint's epoch reads: no validation has run yet (see VisualCallback)
        self._saved = checkpoint.get("validation", {})

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logged = sorted((name, value) for name, value in trainer.callback_metrics.items() if name.startswith(PREFIX))
        logged = logged or sorted(
            (name, torch.tensor(value)) for name, value in self._saved.items() if name.startswith(PREFIX)
        )
        if not logged:
            return
        kl = torch.stack([value for _, value in logged]).float().cpu()  # (D,): one copy from the device
        self.log_figure(trainer, "figures/kl_per_dim", kl_figure, kl)
        self.writer.submit(_histograms, self._tensorboards(trainer), kl, self.step)


def _histograms(tensorboards: list, kl: torch.Tensor, step: int) -> None:
    for tensorboard in tensorboards:
        tensorboard.add_histogram("kl_per_dim", kl, global_step=step)


def kl_figure(kl: torch.Tensor) -> Figure:
    """Bars of the KL of each latent dimension ``(D,)``."""
    width = max(4, 0.25 * len(kl) + 2)
    figure = Figure(figsize=(width, 3.5))
    # fixed margins in inches, for speed: a layout engine measures every text again at each draw
    figure.subplots_adjust(left=0.75 / width, right=1 - 0.15 / width, bottom=0.15, top=0.9)
    ax = figure.add_subplot()
    ax.bar(range(len(kl)), kl.numpy())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(
        xlabel="latent dimension",
        ylabel="KL (nats per image)",
        title=f"Validation KL per dimension, total {kl.sum():.2f} nats",
    )
    return figure
