"""Figures of the evaluation: confusion matrix, class histogram, accuracy under latent noise."""

import torch
from matplotlib.figure import Figure


def confusion_figure(confusion: torch.Tensor, title: str) -> Figure:
    """Rows: the digit shown; columns: what the classifier read. Off-diagonal cells are digits
    that turned into others (e.g. 7 into 9)."""
    figure = Figure(figsize=(5.2, 4.5), layout="constrained")
    ax = figure.add_subplot()
    fraction = confusion.double() / confusion.sum(dim=1, keepdim=True).clamp(min=1)
    image = ax.imshow(fraction.numpy(), cmap="Blues", vmin=0, vmax=1)
    for i, j in confusion.nonzero().tolist():  # the count in every non-empty cell
        color = "white" if fraction[i, j] > 0.5 else "black"
        ax.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=6, color=color)
    ax.set(xticks=range(10), yticks=range(10), xlabel="classifier reads", ylabel="digit shown", title=title)
    figure.colorbar(image, ax=ax, label="fraction of the row")
    return figure


def histogram_figure(counts: list[int], title: str) -> Figure:
    figure = Figure(figsize=(5, 3), layout="constrained")
    ax = figure.add_subplot()
    ax.bar(range(10), counts)
    ax.set(xticks=range(10), xlabel="digit (as the classifier reads it)", ylabel="samples", title=title)
    return figure


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
