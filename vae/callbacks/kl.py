"""The per-dimension KL of the last validation epoch as a bar chart and a histogram."""

import lightning as L
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vae.callbacks.base import VisualCallback
from vae.callbacks.reused_figure import ReusedFigure, tick_limits

PREFIX = "val/kl_per_dim/"


class KLPerDimension(VisualCallback):
    """Bars of KL(q(z_d | x) || p(z_d)) per latent dimension d, averaged over the validation set.

    Reads the ``val/kl_per_dim/*`` values the model logged; draws nothing for a model with no
    KL term (an auto-encoder). Dimensions near 0 nats are unused by the model.
    """

    def __init__(self, every_n_epochs: int = 1, background: bool = False) -> None:
        super().__init__(every_n_epochs, background)
        self._saved: dict[str, float] = {}  # the validation values of the checkpoint a run resumes from
        self._bars = KLFigure()

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
        self.log_figure(trainer, "figures/kl_per_dim", self._bars.png, kl)
        self.writer.submit(_histograms, self._tensorboards(trainer), kl, self.step)


def _histograms(tensorboards: list, kl: torch.Tensor, step: int) -> None:
    for tensorboard in tensorboards:
        tensorboard.add_histogram("kl_per_dim", kl, global_step=step)


class KLFigure:
    """Bars of the KL of each latent dimension ``(D,)`` as a PNG: a figure built at the first draw and drawn again
    at the others (``ReusedFigure``)."""

    def __init__(self) -> None:
        self._reused: ReusedFigure | None = None

    def png(self, kl: torch.Tensor) -> bytes:
        if self._reused is None or len(self._reused.dynamic) != len(kl) + 1:  # the first draw, or another model
            width = max(4, 0.25 * len(kl) + 2)
            figure = Figure(figsize=(width, 3.5))
            # fixed margins in inches: a layout engine measures every text again at each draw
            figure.subplots_adjust(left=0.75 / width, right=1 - 0.15 / width, bottom=0.15, top=0.9)
            ax = figure.add_subplot()
            bars = ax.bar(range(len(kl)), kl.numpy())
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set(xlabel="latent dimension", ylabel="KL (nats per image)", xlim=(-0.6, len(kl) - 0.4))
            # the title holds the total, which changes at every draw
            self._reused = ReusedFigure(figure, [*bars, ax.title])
        ax, bars = self._reused.figure.axes[0], self._reused.dynamic[:-1]
        for bar, value in zip(bars, kl.tolist(), strict=True):
            bar.set_height(value)
        ax.set_ylim(0, tick_limits(ax.yaxis, 0, kl.max().item())[1])
        # set_text, not set_title: set_title puts the title back at y=1, and only a full draw would place it again
        ax.title.set_text(f"Validation KL per dimension, total {kl.sum():.2f} nats")
        return self._reused.png()
