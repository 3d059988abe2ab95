"""A sweep's results as a table and plots: ``python -m vae.report <multirun folder>`` (or ``vae-report``).

Reads what every run of the sweep has written so far (``metrics.json``, the ``eval.json`` of its
checkpoints, its TensorBoard scalars and PNGs) and writes into the sweep folder:

- ``report.md`` and ``report.csv``: one row per run, the swept settings and the metrics; failed and
  unfinished runs are listed as such (so a sweep still in progress can be reported too);
- ``metrics_vs_latent_dim.png``, ``kl_vs_recon.png``, ``training_curves.png``, ``noise_robustness.png``
  (evaluated runs);
- contact sheets of the runs' last pictures: ``sheet_prior_samples.png``, ``sheet_reconstructions.png``,
  ``sheet_latent_scatter.png``.
"""

import argparse
import contextlib
import csv
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.image
from hydra.core.override_parser.overrides_parser import OverridesParser
from matplotlib.figure import Figure
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from vae.evaluation import SCALARS
from vae.metrics.figures import robustness_figure

# How much the k importance samples of test/nll tighten the ELBO: -test/eval_elbo - test/nll, on the same images.
GAP = "test/nll_elbo_gap"
# Columns of the table, in this order, for those that at least one run has. test/eval_elbo is the evaluation's
# ELBO: where the trainer's test/loss is a cross-entropy on grey levels (data.binarize=none), the only
# likelihood of a cheap evaluation.
LIKELIHOODS = ("test/nll", "test/eval_elbo", GAP)
METRICS = (
    "test/loss", "test/recon", "test/kl", *LIKELIHOODS, *(name for name in SCALARS if name not in LIKELIHOODS),
    "val/loss",
)  # fmt: skip
# Metrics drawn against the latent dim, one panel each (where any run has them).
PLOTTED = ("test/loss", "test/recon", "test/kl", "test/nll", "test/active_units", "samples/fid")
# Training curves, one panel each (per-step values; a GAN's two losses show its oscillation).
CURVES = ("train/loss", "train/recon", "train/kl", "train/d_loss", "train/g_loss")
SHEETS = ("prior_samples", "reconstructions", "latent_scatter")  # picture folders under <run>/images/
NOT_SWEPT = {"seed", "hydra.sweep.dir", "hydra.run.dir", "paths.root_dir", "data.root"}  # never a series key


@dataclass
class Run:
    """What one job of the sweep has left in its folder."""

    folder: Path
    status: str  # completed | failed | unfinished (running, or killed before it could record)
    overrides: dict[str, str]  # its command-line overrides, including the sweep's
    latent_dim: int | None
    metrics: dict[str, float] = field(default_factory=dict)
    n_params: int | None = None
    wall_time_s: float | None = None
    epoch: int | None = None  # last epoch logged, for unfinished runs
    error: str = ""
    robustness: tuple[list[float], list[float]] | None = None  # (sigmas, accuracies) when evaluated
    relative_noise: bool = False  # the robustness noise was scaled by each dim's spread
    samples_kind: str = ""  # what the sample metrics measured (decoder means, drawn pixels, generator outputs)
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # CURVES: (step, value) pairs


def find_runs(sweep: Path) -> list[Path]:
    """The job folders of a multirun (each has ``.hydra/overrides.yaml``), in job order."""
    folders = [p.parent.parent for p in sweep.glob("*/.hydra/overrides.yaml")]

    def job_number(folder: Path) -> tuple[int, str]:
        suffix = folder.name.rsplit("_", 1)[-1]
        return (int(suffix) if suffix.isdigit() else sys.maxsize, folder.name)

    return sorted(folders, key=job_number)


def read_run(folder: Path) -> Run:
    """The run's status, settings and numbers; evaluation results (eval.json) take precedence over
    those recorded at the end of training, being the later measurement."""
    overrides = {
        o.key_or_group: o.get_value_element_as_str()
        for o in OverridesParser.create().parse_overrides(OmegaConf.load(folder / ".hydra" / "overrides.yaml"))
        if not o.is_delete()
    }
    latent_dim = OmegaConf.select(OmegaConf.load(folder / ".hydra" / "config.yaml"), "model.latent_dim", default=None)
    run = Run(folder, "unfinished", overrides, latent_dim)
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0}).Reload()  # its TensorBoard files
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    run.curves = {tag: scalars[tag] for tag in CURVES if tag in scalars}
    summary_path = folder / "metrics.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        run.status, run.error = summary["status"], summary.get("error", "")
        run.metrics = {k: v for k, v in summary.get("metrics", {}).items() if k in METRICS}
        run.n_params, run.wall_time_s = summary.get("n_params"), summary.get("wall_time_s")
        _add_evaluation(run, summary.get("best_checkpoint"))
    else:  # still running, or killed: what it has logged so far
        run.metrics = {tag: scalars[tag][-1][1] for tag in METRICS if tag in scalars}
        run.epoch = int(scalars["epoch"][-1][1]) if "epoch" in scalars else None
    if {"test/nll", "test/eval_elbo"} <= run.metrics.keys():
        run.metrics[GAP] = -run.metrics["test/eval_elbo"] - run.metrics["test/nll"]
    return run


def _add_evaluation(run: Run, best_checkpoint: str | None) -> None:
    path = run.folder / "checkpoints" / "eval.json"
    if not path.is_file():
        return
    evaluations = json.loads(path.read_text())  # {checkpoint file name: results}
    name = Path(best_checkpoint).name if best_checkpoint else None
    results = evaluations.get(name) or max(evaluations.values(), key=lambda r: r["step"])
    run.metrics |= {k: results[k] for k in METRICS if results.get(k) is not None}
    run.samples_kind = results.get("samples_kind", "")
    if curve := results.get("noise_robustness"):
        run.robustness = (curve["sigma"], curve["accuracy"])
        run.relative_noise = curve.get("relative", False)


def swept_keys(runs: list[Run]) -> list[str]:
    """Override keys whose value differs between runs (all override keys for a single run)."""
    keys = list(dict.fromkeys(k for run in runs for k in run.overrides if k not in NOT_SWEPT))
    if len(runs) == 1:
        return keys
    return [k for k in keys if len({run.overrides.get(k) for run in runs}) > 1]


def _sort_key(value: str) -> tuple[int, float, str]:
    """Numbers in numeric order (2 before 10), before words in alphabetical order."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def series_label(run: Run, swept: list[str]) -> str:
    """The run's swept settings other than the latent dim: one line per label in the plots."""
    parts = [f"{key.split('.')[-1]}={run.overrides.get(key, '-')}" for key in swept if key != "model.latent_dim"]
    return ", ".join(parts) or "all runs"


def run_label(run: Run, swept: list[str]) -> str:
    return ", ".join(f"{key.split('.')[-1]}={run.overrides.get(key, '-')}" for key in swept) or run.folder.name


# --- tables ------------------------------------------------------------------------------------------------
def rows(runs: list[Run], swept: list[str]) -> tuple[list[str], list[dict]]:
    """The table's columns and one dict per run."""
    metrics = [m for m in METRICS if any(m in run.metrics for run in runs)]
    samples = ["samples"] if any(run.samples_kind for run in runs) else []
    columns = ["run", "status", *swept, *metrics, *samples, "n_params", "wall_time_s", "epoch", "error"]
    table = []
    for run in runs:
        row = {"run": run.folder.name, "status": run.status, **{k: run.overrides.get(k, "") for k in swept}}
        row |= {m: run.metrics.get(m) for m in metrics} | dict.fromkeys(samples, run.samples_kind)
        row |= {"n_params": run.n_params, "wall_time_s": run.wall_time_s, "epoch": run.epoch, "error": run.error}
        table.append(row)
    return columns, table


def write_csv(path: Path, columns: list[str], table: list[dict]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in table)


def _cell(value) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, str) and len(value) > 8:  # a long swept number, e.g. a learning rate Optuna sampled
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(sweep: Path, runs: list[Run], columns: list[str], table: list[dict], figures: list[str]) -> str:
    counts = {status: sum(run.status == status for run in runs) for status in ("completed", "failed", "unfinished")}
    # errors get their own section (they are long); epochs matter only while runs are unfinished
    shown = [c for c in columns if c != "error" and (c != "epoch" or counts["unfinished"])]
    lines = [
        f"# Sweep report: {sweep.name}",
        "",
        f"{len(runs)} runs: {counts['completed']} completed, {counts['failed']} failed, "
        f"{counts['unfinished']} unfinished. Losses, reconstruction, KL and NLL are nats per image (summed over "
        "pixels and latent dims, averaged over the test images); test/nll and test/eval_elbo are measured on the "
        "evaluation's images (Bernoulli models: the data module's fixed test binarization) in [0, 1] pixel units, "
        f"and {GAP} = -test/eval_elbo - test/nll is what the importance samples tighten; FID is in the reference "
        "classifier's feature space (FID-MNIST) and `samples` says what it measured; unfinished runs show their "
        "last logged validation values.",
        "",
        "| " + " | ".join(shown) + " |",
        "|" + "---|" * len(shown),
        *("| " + " | ".join(_cell(row[c]) for c in shown) + " |" for row in table),
    ]
    failed = [row for row in table if row["status"] == "failed"]
    if failed:
        lines += ["", "## Failed runs", "", *(f"- `{row['run']}`: {_cell(row['error'])}" for row in failed)]
    lines += ["", "## Figures", "", *(f"![{name}]({name})" for name in figures)]
    return "\n".join(lines) + "\n"


# --- figures ---------------------------------------------------------------------------------------------
def _by_series(runs: list[Run], swept: list[str], metric: str) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = {}
    for run in runs:
        if run.status == "completed" and metric in run.metrics and run.latent_dim is not None:
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
        if run.status == "completed" and {"test/kl", "test/recon"} <= run.metrics.keys():
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


def _robustness(runs: list[Run], swept: list[str]) -> Figure | None:
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


# --- entry point -----------------------------------------------------------------------------------------
def report(sweep: Path) -> list[Run]:
    """Writes the report files into ``sweep`` and returns the runs it read."""
    sweep = Path(sweep)
    folders = find_runs(sweep)
    if not folders:
        raise FileNotFoundError(f"{sweep}: no run folders (<run>/.hydra/overrides.yaml) found; pass a multirun folder")
    runs = [read_run(folder) for folder in folders]
    swept = swept_keys(runs)
    runs.sort(key=lambda run: [_sort_key(run.overrides.get(key, "")) for key in swept])  # e.g. by model, then dim
    columns, table = rows(runs, swept)
    write_csv(sweep / "report.csv", columns, table)

    figures = {
        "metrics_vs_latent_dim.png": metrics_figure(runs, swept),
        "kl_vs_recon.png": tradeoff_figure(runs, swept),
        "training_curves.png": curves_figure(runs, swept),
        "noise_robustness.png": _robustness(runs, swept),
        **{f"sheet_{name}.png": contact_sheet(runs, swept, name) for name in SHEETS},
    }
    written = []
    for file_name, figure in figures.items():
        if figure is not None:
            figure.savefig(sweep / file_name, dpi=100)
            written.append(file_name)
    (sweep / "report.md").write_text(markdown(sweep, runs, columns, table, written))
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vae-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="a multirun folder, e.g. logs/multirun/<time>")
    args = parser.parse_args(argv)
    try:
        runs = report(args.sweep)
    except FileNotFoundError as err:
        parser.exit(1, f"vae-report: {err}\n")
    print(f"{len(runs)} runs -> {args.sweep / 'report.md'}, {args.sweep / 'report.csv'}")


if __name__ == "__main__":
    main()
