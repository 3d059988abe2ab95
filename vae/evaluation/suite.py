"""Evaluates checkpoints: finds them, runs every part of the evaluation, records eval.json and TensorBoard."""

import json
import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter

from vae.callbacks.drawing import figure_png, write_png
from vae.config import validate
from vae.evaluation.data import data_module, whole
from vae.evaluation.likelihood import likelihood_metrics
from vae.evaluation.quality import latent_metrics, reconstruction_metrics, sample_metrics
from vae.metrics.classifier import reference_classifier
from vae.metrics.figures import confusion_figure, histogram_figure, robustness_figure
from vae.runs.record import read_record
from vae.utils import load_model
from vae.utils.steps import checkpoint_step

log = logging.getLogger(__name__)
# Headline numbers: printed, and logged as TensorBoard scalars (they also fill the HPARAMS table).
SCALARS = (
    "test/nll", "test/eval_elbo", "test/active_units", "test/knn_accuracy", "test/silhouette",
    "samples/inception_score", "samples/fid", "recon/fid", "recon/accuracy",
)  # fmt: skip


def checkpoints_to_evaluate(path: str | Path) -> list[Path]:
    """A checkpoint itself; a run folder's best checkpoint; or the best checkpoint of every run in a sweep folder."""
    path = Path(path).expanduser().resolve()
    if path.is_file():
        return [path]
    is_run = (path / "checkpoints").is_dir()
    runs = [path] if is_run else sorted(folder for folder in path.glob("*/") if (folder / "checkpoints").is_dir())
    if not runs:
        raise FileNotFoundError(f"ckpt_path={path}: neither a checkpoint, nor a run folder, nor a folder of runs")
    return [best_checkpoint(run) for run in runs]


def best_checkpoint(run: Path) -> Path:
    """The run's best checkpoint by validation loss (from metrics.json, else epoch_*.ckpt), else last.ckpt."""
    best = (read_record(run) or {}).get("best_checkpoint")
    if best and Path(best).is_file():
        return Path(best)
    return ([*sorted((run / "checkpoints").glob("epoch_*.ckpt")), run / "checkpoints" / "last.ckpt"])[0]


def evaluate(cfg: DictConfig) -> list[dict]:
    """Evaluates every checkpoint ``cfg.ckpt_path`` names; prints and records the results."""
    validate(cfg)
    dataset = cfg.data.dataset if cfg.get("data") else None  # data=<option>: another dataset than the run's
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if cfg.device == "auto" else cfg.device)
    results = []
    for ckpt in checkpoints_to_evaluate(cfg.ckpt_path):
        log.info(f"Evaluating {ckpt} ({cfg.evaluation.metrics} metrics, on {device})")
        results.append(evaluate_checkpoint(ckpt, cfg.evaluation, device, cfg.get("data_root"), dataset=dataset))
        log.info("\n" + table(results[-1]))
    if len(results) > 1:  # a sweep: the runs' robustness curves side by side
        curves = {Path(r["checkpoint"]).parent.parent.name: _curve(r) for r in results if "noise_robustness" in r}
        if curves:
            figure = robustness_figure(curves, relative=cfg.evaluation.noise_relative)
            figure.savefig(Path(cfg.ckpt_path) / "noise_robustness.png", dpi=100)
    return results


@torch.no_grad()
def evaluate_checkpoint(
    ckpt: Path,
    evaluation: DictConfig,
    device: torch.device,
    data_root: str | None = None,
    run_cfg: DictConfig | None = None,
    dataset: DictConfig | None = None,
) -> dict:
    """Every metric of ``evaluation`` for one checkpoint, also written to eval.json and the run's TensorBoard.

    ``run_cfg`` is the run's config (default: its ``.hydra/config.yaml``); ``data_root`` moves its data.
    The test images are those of the run's dataset, or of ``dataset`` (a ``data.dataset`` node) when
    given: an out-of-distribution evaluation, said so in the results and the log.
    """
    run = ckpt.parent.parent
    run_cfg = (run_cfg or OmegaConf.load(run / ".hydra" / "config.yaml")).copy()
    if data_root is not None:
        run_cfg.data.root = data_root
    trained_on = trained_dataset(run_cfg)
    if dataset is not None and dataset.name != trained_on:
        log.warning(f"Out of distribution: {ckpt} was trained on {trained_on} and is evaluated on {dataset.name}")
    if dataset is not None:
        run_cfg.data.dataset = dataset
    model = load_model(ckpt, run_cfg=run_cfg).to(device)
    served = data_module(run_cfg)  # the images as the model was trained and tested on them, at its size
    # the images as a reader sees them, and the reference classifier takes them: grey levels, 28x28
    reference = whole(data_module(run_cfg, binarize="none", normalize=False, image_size=28).test_dataset)[0]
    test = whole(served.test_dataset)  # (x, labels)
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    # on the training curves' x-axis, at the batches the weights were trained on
    results = {"checkpoint": str(ckpt), "epoch": checkpoint["epoch"], "step": checkpoint_step(checkpoint)}
    results |= {"dataset": served.dataset.name, "trained_on": trained_on, "classes": served.classes}
    likelihood = getattr(model, "likelihood", None)
    results |= {"model": type(model).__name__, "likelihood": likelihood and likelihood.name}
    results["latent_dim"] = model.latent_dim
    classifier = reference_classifier(served.dataset, device)  # the dataset's, checksum verified
    parts = {"likelihood": lambda: likelihood_metrics(model, run_cfg, served, evaluation, device)}
    if getattr(model, "has_encoder", True):
        parts["latent"] = lambda: latent_metrics(model, served, *test, evaluation)
        parts["reconstructions"] = lambda: reconstruction_metrics(
            model, served, *test, reference, evaluation, classifier
        )
    parts["samples"] = lambda: sample_metrics(model, served, reference, evaluation, classifier)
    seconds = {}
    for part, measure in parts.items():
        torch.manual_seed(evaluation.seed)
        start = time.perf_counter()
        results |= measure()
        seconds[part] = round(time.perf_counter() - start, 2)
    results["seconds"] = seconds
    _record(run, ckpt, results)
    return results


def trained_dataset(run_cfg: DictConfig) -> str:
    """The dataset a run was trained on; runs recorded before ``data.dataset`` existed trained on MNIST."""
    return OmegaConf.select(run_cfg, "data.dataset.name", default="MNIST")


def _curve(results: dict) -> tuple[list[float], list[float]]:
    """The noise levels and the label accuracy at each, from one evaluation's results."""
    return results["noise_robustness"]["sigma"], results["noise_robustness"]["accuracy"]


def _record(run: Path, ckpt: Path, results: dict) -> None:
    """eval.json beside the checkpoint (one entry per checkpoint); scalars, figures and PNGs for the run.

    An evaluation on another dataset than the run's is kept apart, never in the place of the run's own: its
    entry is ``<checkpoint> on <dataset>``, its TensorBoard tags start with ``ood/<dataset>/`` and its
    PNGs go to ``images/eval/<dataset>/``.
    """
    dataset = results["dataset"]
    ood = dataset != results["trained_on"]
    key, prefix, pngs = (f"{ckpt.name} on {dataset}", f"ood/{dataset}/", dataset) if ood else (ckpt.name, "", "")
    path = ckpt.parent / "eval.json"
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps(recorded | {key: results}, indent=2))
    classes, counts = results["classes"], results["samples/class_histogram"]
    figures = {"eval/class_histogram": histogram_figure(counts, f"Samples, z ~ {results['samples_prior']}", classes)}
    if "recon/confusion" in results:  # models with an encoder
        confusion = torch.tensor(results["recon/confusion"])
        title = f"Reconstructions of {results['dataset']} test images"
        figures["eval/confusion"] = confusion_figure(confusion, title, classes)
        relative = results["noise_robustness"]["relative"]
        figures["eval/noise_robustness"] = robustness_figure({run.name: _curve(results)}, relative=relative)
    (run / "images" / "eval" / pngs).mkdir(parents=True, exist_ok=True)
    with SummaryWriter(run) as writer:  # one more event file in the run's own TensorBoard folder
        for name in SCALARS:
            if results.get(name) is not None:
                writer.add_scalar(prefix + name, results[name], global_step=results["step"])
        for tag, figure in figures.items():  # drawn once, for the PNG file and the TensorBoard image alike
            png = run / "images" / "eval" / pngs / f"{tag.split('/')[-1]}.png"
            write_png(figure_png(figure), png, [writer], prefix + tag, results["step"])


def table(results: dict) -> str:
    """The headline numbers of one evaluation, one per line."""
    rows = [f"{name:26s} {results[name]:.4g}" if results.get(name) is not None else f"{name:26s} -" for name in SCALARS]
    dataset = results.get("dataset", "MNIST")
    if results.get("trained_on", dataset) != dataset:
        dataset += f" (out of distribution: the model was trained on {results['trained_on']})"
    protocols = [
        f"{'dataset':26s} {dataset}",
        f"{'NLL protocol':26s} {results.get('nll_protocol', '')}",
        f"{'samples':26s} {results['samples_kind']}",
    ]
    return "\n".join([*rows, *protocols])
