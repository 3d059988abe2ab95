"""Pictures of the latent space: scatter of the codes by label, and decoded traversals."""

import lightning as L
import torch
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from vae.callbacks.base import VisualCallback
from vae.callbacks.drawing import figure_png
from vae.callbacks.reused_figure import ReusedFigure, tick_limits


def project_2d(z: torch.Tensor) -> tuple[torch.Tensor, str, str]:
    """Coordinates ``(N, 2)`` to plot codes ``z`` ``(N, D)``, with axis labels.

    2-D codes are shown as they are; higher dims by PCA onto their two main directions.
    """
    if z.shape[1] == 2:
        return z, "z[0]", "z[1]"
    if z.shape[1] == 1:
        return torch.cat([z, torch.zeros_like(z)], dim=1), "z[0]", ""
    centered = z - z.mean(0)
    _, s, vh = torch.linalg.svd(centered, full_matrices=False)
    share = s.pow(2) / s.pow(2).sum()  # fraction of the variance along each principal direction
    return centered @ vh[:2].T, f"PC1 ({share[0]:.0%} of var.)", f"PC2 ({share[1]:.0%} of var.)"


class LatentScatter(VisualCallback):
    """Codes of validation images colored by class: 2-D directly, higher dims by PCA.

    Args:
        n_points: validation images to encode.
        plot_3d: for a 3-D latent space, also draw a 3-D scatter.
        every_n_epochs, background: see ``VisualCallback``.
    """

    def __init__(
        self, n_points: int = 2000, plot_3d: bool = True, every_n_epochs: int = 1, background: bool = False
    ) -> None:
        super().__init__(every_n_epochs, background)
        self.n_points, self.plot_3d = n_points, plot_3d
        self._scatter = ScatterFigure()

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        x, labels = self.fixed_images(trainer.datamodule.val_dataset, self.n_points)
        z = pl_module.encode_all(x).float().cpu()  # (N, D)
        coords, xlabel, ylabel = project_2d(z)
        classes = trainer.datamodule.classes
        scatter = (coords, labels, xlabel, ylabel, z.shape[1], classes)
        self.log_figure(trainer, "figures/latent_scatter", self._scatter.png, *scatter)
        if self.plot_3d and z.shape[1] == 3:
            self.log_figure(trainer, "figures/latent_scatter_3d", scatter_3d_png, z, labels, classes)


class ScatterFigure:
    """Codes (or their projection) ``(N, 2)`` colored by class, in the order of the images (no class painted over
    the others), as a PNG: a figure built at the first draw and drawn again at the others (``ReusedFigure``)."""

    def __init__(self) -> None:
        self._reused: ReusedFigure | None = None

    def png(
        self, coords: torch.Tensor, labels: torch.Tensor, xlabel: str, ylabel: str, latent_dim: int, classes: list[str]
    ) -> bytes:
        if self._reused is None:
            figure = Figure(figsize=(6, 5))
            # fixed margins: a layout engine measures every text again at each draw; class names wider than a digit
            # (7 pt, about a hundredth of the figure's width a character) take room from the plot
            right = 0.95 - 0.0105 * (max(map(len, classes)) - 1)
            figure.subplots_adjust(left=0.13, right=right, bottom=0.1, top=0.93)
            ax = figure.add_subplot()
            # 3 pt discs without an edge: what 2 pt markers with the default 1 pt edge in their colour looked like,
            # drawn in half the time
            points = ax.scatter(coords[:, 0], coords[:, 1], c=labels, s=9, linewidths=0, **class_colours(classes))
            class_colorbar(figure, ax, points, classes)
            # the axis labels hold the shares of variance, which change at every draw
            self._reused = ReusedFigure(figure, [points, ax.xaxis.label, ax.yaxis.label])
        ax, points = self._reused.figure.axes[0], self._reused.dynamic[0]
        points.set_offsets(coords.numpy())
        points.set_array(labels.numpy())
        ax.set(xlim=around(ax.xaxis, coords[:, 0]), ylim=around(ax.yaxis, coords[:, 1]))
        ax.set(xlabel=xlabel, ylabel=ylabel)
        ax.title.set_text(f"Codes of {len(coords)} validation images (latent dim {latent_dim})")
        return self._reused.png()


def around(axis: Axis, values: torch.Tensor) -> tuple[float, float]:
    """Limits of ``axis`` for ``values``, on its ticks (``tick_limits``), symmetric about 0 when the values lie
    around it (each side at least half the other): a principal direction has no sign, and a cloud that flips from
    one epoch to the next keeps its frame, so that its figure is not drawn in full again."""
    low, high = values.min().item(), values.max().item()
    if low < 0 < high and min(-low, high) >= max(-low, high) / 2:
        low, high = -max(-low, high), max(-low, high)
    return tick_limits(axis, low, high)


def class_colours(classes: list[str]) -> dict:
    """Scatter keywords that give each class label one colour of tab10 (at most 10 classes: data_checks.py)."""
    return {"cmap": "tab10", "vmin": -0.5, "vmax": len(classes) - 0.5}


def class_colorbar(figure: Figure, ax, points, classes: list[str]) -> None:
    """A colour bar with one tick per class, labelled with its name."""
    edges = [label - 0.5 for label in range(len(classes) + 1)]
    bar = figure.colorbar(points, ax=ax, label="class", fraction=0.05, pad=0.03, boundaries=edges)
    bar.set_ticks(range(len(classes)), labels=classes, fontsize=7)


def scatter_3d_png(z: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> bytes:
    """3-D codes colored by class, as a PNG (a new figure each draw: drawn only for 3-D latent spaces)."""
    figure = Figure(figsize=(6, 5), layout="constrained")
    ax = figure.add_subplot(projection="3d")
    points = ax.scatter(z[:, 0], z[:, 1], z[:, 2], c=labels, s=3, **class_colours(classes))
    class_colorbar(figure, ax, points, classes)
    ax.set(xlabel="z[0]", ylabel="z[1]", zlabel="z[2]", title="Codes in 3-D")
    return figure_png(figure)


class LatentTraversal(VisualCallback):
    """Decoded images along latent axes.

    2-D latent: the grid of decodings over [-span, span]^2 (z[0] left to right, z[1] bottom
    to top). Otherwise: one row per most active dimension (largest variance of the codes over
    validation images, the active-unit statistic of Burda et al.), that dimension swept over
    [-span, span] with the others at 0, the prior mean.

    Args:
        span: half-width of the swept interval.
        steps: decoded points per axis.
        n_dims: rows (most active dimensions) for latents other than 2-D.
        n_points: validation images used to rank the dimensions.
        every_n_epochs, background: see ``VisualCallback``.
    """

    def __init__(
        self,
        span: float = 2.0,
        steps: int = 11,
        n_dims: int = 8,
        n_points: int = 1000,
        every_n_epochs: int = 1,
        background: bool = False,
    ) -> None:
        super().__init__(every_n_epochs, background)
        self.span, self.steps, self.n_dims, self.n_points = span, steps, n_dims, n_points

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        values = torch.linspace(-self.span, self.span, self.steps)
        latent_dim = pl_module.latent_dim
        if latent_dim == 2:
            z1, z0 = torch.meshgrid(values.flip(0), values, indexing="ij")  # rows: z[1] from +span down
            z = torch.stack([z0.flatten(), z1.flatten()], dim=1)  # (steps^2, 2)
        else:
            x, _ = self.fixed_images(trainer.datamodule.val_dataset, self.n_points)
            dims = pl_module.encode_all(x).var(0).argsort(descending=True)[: self.n_dims]
            z = torch.zeros(len(dims), self.steps, latent_dim)
            z[torch.arange(len(dims)), :, dims] = values  # row i sweeps dimension dims[i]
            z = z.flatten(0, 1)  # (rows * steps, D)
        x_hat = self.displayable(trainer, pl_module.decode_all(z))
        self.log_image(trainer, "images/latent_traversal", make_grid(x_hat, nrow=self.steps, pad_value=0.5))
