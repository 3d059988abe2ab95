"""Figures of the evaluation: confusion matrix, class histogram, accuracy under latent noise."""

import torch
from matplotlib.figure import Figure


def confusion_figure(confusion: torch.Tensor, title: str, classes: list[str]) -> Figure:
    """Rows: the class shown; columns: what the classifier read. Off-diagonal cells are images
    that turned into another class (e.g. 7 into 9, a shirt into a T-shirt)."""
    figure = Figure(figsize=(5.2, 4.5), layout="constrained")
    ax = figure.add_subplot()
    fraction = confusion.double() / confusion.sum(dim=1, keepdim=True).clamp(min=1)
    image = ax.imshow(fraction.numpy(), cmap="Blues", vmin=0, vmax=1)
    for i, j in confusion.nonzero().tolist():  # the count in every non-empty cell
        color = "white" if fraction[i, j] > 0.5 else "black"
        ax.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=6, color=color)
    ax.set(xlabel="classifier reads", ylabel="class shown", title=title)
    _class_ticks(ax.xaxis, classes)
    _class_ticks(ax.yaxis, classes)
    figure.colorbar(image, ax=ax, label="fraction of the row")
    return figure


def histogram_figure(counts: list[int], title: str, classes: list[str]) -> Figure:
    figure = Figure(figsize=(5, 3), layout="constrained")
    ax = figure.add_subplot()
    ax.bar(range(len(counts)), counts)
    ax.set(xlabel="class (as the classifier reads it)", ylabel="samples", title=title)
    _class_ticks(ax.xaxis, classes)
    return figure


def _class_ticks(axis, classes: list[str]) -> None:
    """One tick per class, with its name; names longer than a digit slanted so that they do not overlap."""
    axis.set_ticks(range(len(classes)), classes, fontsize=7)
    if axis.axis_name == "x" and max(map(len, classes)) > 2:
        for label in axis.get_ticklabels():
            label.set(rotation=40, ha="right")


def robustness_figure(curves: dict[str, tuple[list[float], list[float]]], relative: bool = False) -> Figure:
    """One curve per model: classifier accuracy on decode(z + sigma * eps) against the original label
    (``relative``: eps scaled by each latent dim's spread)."""
    figure = Figure(figsize=(5, 3.5), layout="constrained")
    ax = figure.add_subplot()
    for name, (sigmas, accuracies) in curves.items():
        ax.plot(sigmas, accuracies, marker="o", label=name)
    unit = " (in units of each dim's spread)" if relative else ""
    ax.set(xlabel=f"noise sigma added to the code{unit}", ylabel="label accuracy", ylim=(0, 1))
    ax.set_title("Latent noise robustness")
    ax.legend(fontsize=7)
    return figure
