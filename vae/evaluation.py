"""Measures trained models: likelihood, latent space, and sample quality under the reference classifier.

Entry point: ``python evaluate.py ckpt_path=<checkpoint | run folder | sweep folder>`` (``conf/eval.yaml``).
"""

import json
import logging
import time
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter

from vae.config import validate
from vae.metrics import iw_log_likelihood
from vae.metrics.classifier import classifier_card, load_classifier
from vae.metrics.figures import confusion_figure, histogram_figure, robustness_figure
from vae.metrics.latent import active_units, kl_per_dimension, knn_accuracy, perturbed_codes, silhouette
from vae.metrics.samples import class_histogram, frechet_distance, inception_score, label_accuracy, predict
from vae.models import VAE, LatentVariableModel
from vae.utils import load_model

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
    summary = run / "metrics.json"
    if summary.is_file() and (best := json.loads(summary.read_text()).get("best_checkpoint")) and Path(best).is_file():
        return Path(best)
    return ([*sorted((run / "checkpoints").glob("epoch_*.ckpt")), run / "checkpoints" / "last.ckpt"])[0]


def evaluate(cfg: DictConfig) -> list[dict]:
    """Evaluates every checkpoint ``cfg.ckpt_path`` names; prints and records the results."""
    validate(cfg)
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if cfg.device == "auto" else cfg.device)
    results = []
    for ckpt in checkpoints_to_evaluate(cfg.ckpt_path):
        log.info(f"Evaluating {ckpt} ({cfg.evaluation.metrics} metrics, on {device})")
        results.append(evaluate_checkpoint(ckpt, cfg.evaluation, device, cfg.get("data_root")))
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
) -> dict:
    """Every metric of ``evaluation`` for one checkpoint, also written to eval.json and the run's TensorBoard.

    ``run_cfg`` is the run's config (default: its ``.hydra/config.yaml``); ``data_root`` moves its data.
    """
    run = ckpt.parent.parent
    run_cfg = (run_cfg or OmegaConf.load(run / ".hydra" / "config.yaml")).copy()
    if data_root is not None:
        run_cfg.data.root = data_root
    model = load_model(ckpt, run_cfg=run_cfg).to(device)
    served = _data(run_cfg)  # the images as the model was trained and tested on them
    grey = _data(run_cfg, binarize="none", normalize=False, image_size=28)  # the digits as a reader sees them
    test = served.test_dataset[torch.arange(len(served.test_dataset))]  # (x, labels)
    reference = grey.test_dataset[torch.arange(len(grey.test_dataset))][0]
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    results = {"checkpoint": str(ckpt), "epoch": checkpoint["epoch"], "step": checkpoint["global_step"]}
    likelihood = getattr(model, "likelihood", None)
    results |= {"model": type(model).__name__, "likelihood": likelihood and likelihood.name}
    results["latent_dim"] = model.latent_dim
    classifier = load_classifier(device=device)  # the reference classifier, checksum verified
    parts = {"likelihood": lambda: _likelihood(model, reference, test[0], evaluation, device)}
    if getattr(model, "has_encoder", True):
        parts["latent"] = lambda: _latent(model, served, *test, evaluation)
        parts["reconstructions"] = lambda: _reconstruction_metrics(
            model, served, *test, reference, evaluation, classifier
        )
    parts["samples"] = lambda: _sample_metrics(model, served, reference, evaluation, classifier)
    seconds = {}
    for part, measure in parts.items():
        torch.manual_seed(evaluation.seed)
        start = time.perf_counter()
        results |= measure()
        seconds[part] = round(time.perf_counter() - start, 2)
    results["seconds"] = seconds
    _record(run, ckpt, results)
    return results


def _data(run_cfg: DictConfig, **changes):
    """The run's data module on the tensor path, set up, with ``changes`` to its settings."""
    datamodule = hydra.utils.instantiate(run_cfg.data, loader="tensor", **changes)
    datamodule.prepare_data()
    datamodule.setup()
    return datamodule


def _likelihood(model: LatentVariableModel, reference, x, evaluation: DictConfig, device) -> dict:
    """test/nll by the IWAE bound (``metrics=all`` only) and test/eval_elbo, with the protocol stated.

    test/eval_elbo is the ELBO on the protocol's images (for a Bernoulli model, one fixed
    binarization), not the trainer's test/elbo on the test images as the run served them.
    """
    if not isinstance(model, VAE):
        name = "an auto-encoder" if isinstance(model, LatentVariableModel) else f"a {type(model).__name__}"
        return {"test/nll": None, "nll_protocol": f"{name} defines no likelihood p(x): no NLL"}
    settings = evaluation.nll
    if model.likelihood.name == "bernoulli":  # the standard protocol: one fixed binarization of the test set
        images = torch.bernoulli(reference, generator=torch.Generator().manual_seed(settings.seed))
        data = f"test images binarized once with seed {settings.seed} (Bernoulli likelihood)"
    else:
        images = x
        data = f"test images as the run served them (Gaussian likelihood, variance {model.likelihood.variance})"
    batches = [batch.to(device) for batch in images[: settings.images or len(images)].split(settings.batch)]
    count = sum(len(batch) for batch in batches)
    result = {"test/eval_elbo": float(torch.cat([iw_log_likelihood(model, batch, k=1) for batch in batches]).mean())}
    if evaluation.metrics != "all":
        return result | {"nll_protocol": f"not computed (metrics={evaluation.metrics}); ELBO on {count} {data}"}
    log_px = torch.cat([iw_log_likelihood(model, batch, settings.k, settings.chunk) for batch in batches])
    protocol = f"IWAE bound, k={settings.k}, on {count} {data}; nats per image"
    return result | {"test/nll": float(-log_px.mean()), "nll_protocol": protocol}


def _latent(model: LatentVariableModel, served, x, labels, evaluation: DictConfig) -> dict:
    """Active units, KL per dimension, and how well the codes separate the digits."""
    codes = model.encode_all(x)  # (N, D) posterior means of the test images
    result = {}
    result["test/active_units"], variance = active_units(codes)
    result["latent_variance"] = variance.tolist()
    if isinstance(model, VAE):
        posteriors = [model.encode(batch.to(model.device)) for batch in x.split(1000)]  # (mu, logvar) pairs
        mu, logvar = (torch.cat([p[i] for p in posteriors]).cpu() for i in (0, 1))
        result["kl_per_dim"] = kl_per_dimension(mu, logvar).tolist()
    train_x, train_labels = served.train_dataset[torch.arange(len(served.train_dataset))]
    result["test/knn_accuracy"] = knn_accuracy(model.encode_all(train_x), train_labels, codes, labels, evaluation.knn_k)
    result["test/silhouette"] = silhouette(codes, labels, evaluation.silhouette_sample, evaluation.seed)
    return result


def _readable(served, images: torch.Tensor) -> torch.Tensor:
    """Pixel values in [0, 1], 28x28, as the reference classifier takes them."""
    images = served.denormalize(images).clamp(0, 1)
    return F.interpolate(images, size=28, mode="bilinear", antialias=True) if images.shape[-1] != 28 else images


def _sample_metrics(model, served, reference, evaluation: DictConfig, classifier) -> dict:
    """Samples decoded from z ~ N(0, I), as the reference classifier sees them."""
    z = torch.randn(evaluation.samples, model.latent_dim, generator=torch.Generator().manual_seed(evaluation.seed))
    samples = _readable(served, model.decode_all(z))
    return {
        "samples/inception_score": inception_score(classifier, samples),
        "samples/fid": frechet_distance(classifier, reference, samples),
        "samples/class_histogram": class_histogram(classifier, samples),
        "classifier_test_accuracy": classifier_card()["test_accuracy"],
    }


def _reconstruction_metrics(model: LatentVariableModel, served, x, labels, reference, evaluation, classifier) -> dict:
    """Reconstructions of the test digits, and decodings of their codes under noise, as the classifier reads them."""
    codes = model.encode_all(x)
    reconstructions = _readable(served, model.decode_all(codes))
    accuracy, confusion = label_accuracy(classifier, reconstructions, labels)
    noise = torch.randn(codes.shape, generator=torch.Generator().manual_seed(evaluation.seed))
    relative = evaluation.noise_relative
    decoded = (
        _readable(served, model.decode_all(perturbed_codes(codes, sigma, noise, relative)))
        for sigma in evaluation.noise_sigmas
    )
    robustness = [float((predict(classifier, images) == labels).double().mean()) for images in decoded]
    return {
        "recon/fid": frechet_distance(classifier, reference, reconstructions),
        "recon/accuracy": accuracy,
        "recon/confusion": confusion.tolist(),
        "noise_robustness": {"sigma": list(evaluation.noise_sigmas), "accuracy": robustness, "relative": relative},
    }


def _curve(results: dict) -> tuple[list[float], list[float]]:
    """The noise levels and the label accuracy at each, from one evaluation's results."""
    return results["noise_robustness"]["sigma"], results["noise_robustness"]["accuracy"]


def _record(run: Path, ckpt: Path, results: dict) -> None:
    """eval.json beside the checkpoint (one entry per checkpoint); scalars, figures and PNGs for the run."""
    path = ckpt.parent / "eval.json"
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps(recorded | {ckpt.name: results}, indent=2))
    figures = {"eval/class_histogram": histogram_figure(results["samples/class_histogram"], "Samples from N(0, I)")}
    if "recon/confusion" in results:  # models with an encoder
        confusion = torch.tensor(results["recon/confusion"])
        figures["eval/confusion"] = confusion_figure(confusion, "Reconstructions of test digits")
        relative = results["noise_robustness"]["relative"]
        figures["eval/noise_robustness"] = robustness_figure({run.name: _curve(results)}, relative=relative)
    (run / "images" / "eval").mkdir(parents=True, exist_ok=True)
    with SummaryWriter(run) as writer:  # one more event file in the run's own TensorBoard folder
        for name in SCALARS:
            if results.get(name) is not None:
                writer.add_scalar(name, results[name], global_step=results["step"])
        for tag, figure in figures.items():
            figure.savefig(run / "images" / "eval" / f"{tag.split('/')[-1]}.png", dpi=100)
            writer.add_figure(tag, figure, global_step=results["step"])


def table(results: dict) -> str:
    """The headline numbers of one evaluation, one per line."""
    rows = [f"{name:26s} {results[name]:.4g}" if results.get(name) is not None else f"{name:26s} -" for name in SCALARS]
    return "\n".join([*rows, f"{'NLL protocol':26s} {results.get('nll_protocol', '')}"])
