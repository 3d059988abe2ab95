"""The report's figures: metrics against the latent dim, the KL-reconstruction trade-off, curves, contact sheets."""

import math
from pathlib import Path

import matplotlib.image
from matplotlib.figure import Figure

from vae.metrics.figures import robustness_figure
from vae.report.runs import CURVES, Run, run_label, series_label
from vae.runs.record import COMPLETED

# Metrics drawn against the latent dim, one panel each (where any run has them).
PLOTTED = ("test/loss", "test/recon", "test/kl", "test/nll", "test/active_units", "samples/fid")
SHEETS = ("prior_samples", "reconstructions", "latent_scatter")  # picture folders under <run>/images/


def _by_series(runs: list[Run], swept: list[str], metric: str) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = {}
    for run in runs:
        if run.status == COMPLETED and metric in run.metrics and run.latent_dim is not None:
            series.setdefault(series_label(run, swept), []).append((run.latent_dim, run.metrics[metric]))
    return {label: sorted(points) for label, points in series.items()}


def metrics_figure(runs: list[Run], swept: list[str]) -> Figure | None:
    """Each metric against the latent dim, one line per model/backbone/beta (whatever else was swept)."""
    panels = [(m, s) for m in PLOTTED if (s := _by_series(runs, swept, m))]
    if not panels:
        return None
    columns = min(3, len(panels))
    figure = Figure(figsize=(4.2 * columns, 3.4 * math.ceil(len(panels) / columns)), layout="constrained")
    for i, (metric, series) in enumerate(panels):
        ax = figure.add_subplot(math.ceil(len(panels) / columns), columns, i + 1)
        for label, points in series.items():
            ax.plot(*zip(*points, strict=True), marker="o", label=label)
        dims = sorted({d for points in series.values() for d, _ in points})
        ax.set_xscale("log")
        ax.set_xticks(dims, [str(d) for d in dims])
        ax.minorticks_off()
        unit = " (nats/image)" if metric in ("test/loss", "test/recon", "test/kl", "test/nll") else ""
        ax.set(xlabel="latent dim", ylabel=metric + unit, title=metric)
    handles, labels = figure.axes[0].get_legend_handles_labels()
    if len(labels) > 1:
        figure.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize=8)
    return figure


def tradeoff_figure(runs: list[Run], swept: list[str]) -> Figure | None:
    """Test KL against test reconstruction, each run a point labelled by its latent dim."""
    series = {}
    for run in runs:
        if run.status == COMPLETED and {"test/kl", "test/recon"} <= run.metrics.keys():
            point = (run.metrics["test/kl"], run.metrics["test/recon"], run.latent_dim)
            series.setdefault(series_label(run, swept), []).append(point)
    if not series:
        return None
    figure = Figure(figsize=(6, 4.5), layout="constrained")
    ax = figure.add_subplot()
    for label, points in series.items():
        kl, recon, dims = zip(*sorted(points), strict=True)
        ax.plot(kl, recon, marker="o", label=label)
        for x, y, dim in points:
            ax.annotate(f"z={dim}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set(xlabel="KL (nats/image)", ylabel="reconstruction (nats/image)", title="KL against reconstruction (test)")
    if len(series) > 1:
        ax.legend(fontsize=7)
    return figure


def curves_figure(runs: list[Run], swept: list[str]) -> Figure | None:
    """Each training curve of ``CURVES`` against the step, one line per run."""
    panels = [tag for tag in CURVES if any(tag in run.curves for run in runs)]
    if not panels:
        return None
    figure = Figure(figsize=(5 * len(panels), 3.6), layout="constrained")
    for i, tag in enumerate(panels):
        ax = figure.add_subplot(1, len(panels), i + 1)
        for run in runs:
            if tag in run.curves:
                ax.plot(*zip(*run.curves[tag], strict=True), label=run_label(run, swept), linewidth=0.8)
        ax.set(xlabel="step", ylabel=f"{tag} (nats/image)", title=tag)
    handles, labels = figure.axes[0].get_legend_handles_labels()
    if len(labels) > 1:
        figure.legend(handles, labels, loc="outside right upper", fontsize=7)
    return figure


def robustness(runs: list[Run], swept: list[str]) -> Figure | None:
    evaluated = [run for run in runs if run.robustness]
    if not evaluated:
        return None
    curves = {run_label(run, swept): run.robustness for run in evaluated}
    return robustness_figure(curves, relative=all(run.relative_noise for run in evaluated))


def last_picture(run: Run, name: str) -> Path | None:
    """The run's latest PNG of one picture: ``final.png``, else the highest epoch."""
    folder = run.folder / "images" / name
    final = folder / "final.png"
    return final if final.is_file() else max(folder.glob("epoch_*.png"), default=None)


def contact_sheet(runs: list[Run], swept: list[str], name: str) -> Figure | None:
    """Every run's latest picture of one kind, side by side, titled by its swept settings."""
    pictures = [(run_label(run, swept), path) for run in runs if (path := last_picture(run, name))]
    if not pictures:
        return None
    images = [matplotlib.image.imread(path) for _, path in pictures]
    columns = min(5, len(pictures))
    rows_ = math.ceil(len(pictures) / columns)
    aspect = images[0].shape[0] / images[0].shape[1]  # height / width of a picture
    figure = Figure(figsize=(3.2 * columns, (3.2 * aspect + 0.3) * rows_), layout="constrained")
    for i, ((label, _), image) in enumerate(zip(pictures, images, strict=True)):
        ax = figure.add_subplot(rows_, columns, i + 1)
        ax.imshow(image, cmap="gray")
        ax.set_title(label, fontsize=7)
        ax.axis("off")
    return figure


def why_not_drawn(file_name: str, runs: list[Run]) -> str:
    """Why the figure ``file_name`` (a key of ``vae.report``'s figures) could not be drawn from ``runs``."""
    if file_name == "training_curves.png":
        return _why_no_curves(runs)
    if file_name.startswith("sheet_"):
        return f"no run saved a picture under images/{file_name.removeprefix('sheet_').removesuffix('.png')}/"
    return {
        "metrics_vs_latent_dim.png": "no completed run has test metrics and a model.latent_dim",
        "kl_vs_recon.png": "no completed run has test/kl and test/recon",
        "noise_robustness.png": "no run's evaluation (checkpoints/eval.json) measured noise robustness",
    }.get(file_name, "nothing to draw")


def _why_no_curves(runs: list[Run]) -> str:
    logged = [run for run in runs if run.last_step is not None]
    if not logged:
        return "no run has TensorBoard scalars (trained with another logger, or none, or not started)"
    # Lightning writes step values after every log_every_n_steps-th training batch of the run (not of the epoch)
    every = sorted({run.log_every_n_steps for run in logged if run.log_every_n_steps is not None})
    steps = max(run.last_step for run in logged)
    setting = f"trainer.log_every_n_steps={'/'.join(map(str, every))}" if every else "trainer.log_every_n_steps"
    return (
        f"no run logged training scalars ({', '.join(CURVES)}): Lightning writes them every {setting} training "
        f"steps, and the runs logged {steps} steps at most; a smaller {setting.split('=')[0]} draws them"
    )
