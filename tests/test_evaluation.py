"""The evaluation suite: metrics against known values, and evaluate.py end to end on a tiny run."""

import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from tests import prestarted
from tests.commands import train_py
from tests.conftest import TINY, TINY_EVALUATION, compose_train
from tests.tensorboard_events import load_events
from vae.data.datasets import dataset_spec
from vae.evaluation import SCALARS, checkpoints_to_evaluate, evaluate_checkpoint
from vae.evaluation.quality import prior_samples
from vae.likelihoods import Bernoulli, Gaussian
from vae.metrics import iw_log_likelihood
from vae.metrics.classifier import (
    WEIGHTS,
    ClassifierChecksumError,
    classifier_card,
    classifier_weights,
    load_classifier,
)
from vae.metrics.latent import active_units, knn_accuracy, perturbed_codes, silhouette
from vae.metrics.samples import frechet_distance, inception_score
from vae.models import GAN, VAE
from vae.training import build, train

PROJECT = Path(__file__).resolve().parents[1]


class OneHot(nn.Module):
    """A stand-in classifier that reads an image's first pixel as its digit, with full confidence."""

    num_features = 10

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the module a device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        digit = (x[:, 0, 0, 0] * 10).long().clamp(0, 9)
        return 50.0 * nn.functional.one_hot(digit, 10).float()

    features = forward


def digits(counts: list[int]) -> torch.Tensor:
    """Images whose first pixel encodes the digit OneHot reads: counts[d] images of digit d."""
    values = torch.cat([torch.full((n,), (d + 0.5) / 10) for d, n in enumerate(counts)])
    return values.view(-1, 1, 1, 1).expand(-1, 1, 28, 28).clone()


def test_inception_score_extremes():
    assert inception_score(OneHot(), digits([100] * 10)) == pytest.approx(10.0, rel=1e-4)  # balanced, confident
    assert inception_score(OneHot(), digits([1000] + [0] * 9)) == pytest.approx(1.0, abs=1e-4)  # all alike


def test_frechet_distance_is_zero_between_identical_sets_and_grows_apart():
    images = torch.rand(300, 1, 28, 28)
    classifier = load_classifier()
    assert frechet_distance(classifier, images, images) == pytest.approx(0.0, abs=1e-3)
    assert frechet_distance(classifier, images, images * 0.3) > 1.0


def test_classifier_checksum_refuses_a_tampered_file(tmp_path):
    copy, card = tmp_path / "weights.pt", tmp_path / "weights.json"
    shutil.copy(WEIGHTS, copy)
    shutil.copy(WEIGHTS.with_suffix(".json"), card)
    load_classifier(copy)  # the untouched copy loads
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ClassifierChecksumError, match="does not match .* recorded in .*weights.json"):
        load_classifier(copy)


@pytest.mark.parametrize("data, accuracy", [("mnist", 0.99), ("fashion_mnist", 0.93)])
def test_each_dataset_s_shipped_classifier_is_small_recorded_and_loads(data, accuracy):
    spec = dataset_spec(data)
    weights = classifier_weights(spec.classifier)
    card = classifier_card(weights)
    assert card["dataset"] == spec.name and card["classes"] == spec.classes and card["test_images"] == 10_000
    assert card["test_accuracy"] >= accuracy and weights.stat().st_size < 2 * 1024**2
    assert card["command"].startswith("python -m vae.metrics.train_classifier")
    assert load_classifier(weights, spec.name)(torch.zeros(2, 1, 28, 28)).shape == (2, len(spec.classes))


def test_active_units_count_the_dimensions_the_data_moves():
    torch.manual_seed(0)
    codes = torch.randn(2000, 6)
    codes[:, [1, 4]] = 0.05 * torch.randn(2000, 2)  # variance 0.0025: ignored dimensions
    count, variance = active_units(codes)
    assert count == 4 and (variance[[1, 4]] < 0.01).all()


def test_relative_latent_noise_is_blind_to_the_scale_of_the_codes():
    torch.manual_seed(0)
    codes, noise = torch.randn(500, 4) * torch.tensor([1.0, 2.0, 5.0, 0.1]), torch.randn(500, 4)
    assert torch.equal(perturbed_codes(codes, 0.5, noise, relative=False), codes + 0.5 * noise)
    # an AE whose codes are 10x wider, with a decoder that divides by 10, is the same model:
    # relative noise perturbs both alike, absolute noise perturbs the wide one 10x less
    wide = perturbed_codes(10 * codes, 0.5, noise, relative=True) / 10
    assert torch.allclose(wide, perturbed_codes(codes, 0.5, noise, relative=True), atol=1e-5)
    spread = (perturbed_codes(codes, 1.0, noise, relative=True) - codes).std(dim=0) / codes.std(dim=0)
    assert torch.allclose(spread, torch.ones(4), atol=0.1)  # one sigma = one spread of each dim


def test_latent_class_structure_scores():
    torch.manual_seed(0)
    labels = torch.arange(600) % 3
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    codes = centres[labels] + 0.3 * torch.randn(600, 2)
    assert knn_accuracy(codes[:300], labels[:300], codes[300:], labels[300:]) == 1.0
    assert silhouette(codes, labels) > 0.9
    assert silhouette(torch.randn(600, 2), labels) < 0.1  # no structure


@pytest.fixture
def tiny_run(mnist_root, tmp_path):
    """A run trained in the test, with its .hydra record as train.py leaves it."""

    def make(*overrides: str) -> Path:
        run = tmp_path / "_".join(overrides).replace("=", "-") if overrides else tmp_path / "run"
        cfg = compose_train(["trainer.max_epochs=2", *overrides], run, mnist_root)
        (run / ".hydra").mkdir(parents=True)
        OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
        train(cfg)
        return run

    return make


def small(metrics: str = "all") -> dict:
    settings = OmegaConf.load(PROJECT / "conf" / "evaluation" / "default.yaml")
    settings.merge_with({"metrics": metrics, "samples": 200, "silhouette_sample": 50, "nll": {"k": 20, "batch": 20}})
    return settings


def test_evaluation_of_a_tiny_vae_writes_every_key(tiny_run):
    run = tiny_run()
    ckpt = checkpoints_to_evaluate(run)[0]
    assert ckpt.name.startswith("epoch_")  # the run's best checkpoint
    results = evaluate_checkpoint(ckpt, small(), torch.device("cpu"))
    recorded = json.loads((ckpt.parent / "eval.json").read_text())[ckpt.name]
    assert set(SCALARS) | {"nll_protocol", "kl_per_dim", "samples/class_histogram", "recon/confusion"} <= set(recorded)
    assert recorded == json.loads(json.dumps(results))
    assert results["test/nll"] <= -results["test/eval_elbo"] + 5  # the k-sample bound is at least as tight, up to noise
    assert "k=20" in results["nll_protocol"] and "fixed test draw (data.split_seed=0)" in results["nll_protocol"]
    assert sum(results["samples/class_histogram"]) == 200 and results["samples_kind"].startswith("decoder means")
    assert len(results["noise_robustness"]["accuracy"]) == 6
    tags = load_events(run).Tags()
    assert {"test/nll", "samples/fid", "recon/accuracy"} <= set(tags["scalars"])
    assert {"eval/confusion", "eval/noise_robustness", "eval/class_histogram"} <= set(tags["images"])


def test_an_auto_encoder_has_no_likelihood_but_gets_every_other_number(tiny_run):
    ckpt = checkpoints_to_evaluate(tiny_run("model=ae"))[0]
    results = evaluate_checkpoint(ckpt, small(), torch.device("cpu"))
    assert results["test/nll"] is None and "no likelihood" in results["nll_protocol"]
    assert results["samples/inception_score"] >= 1.0 and results["samples/fid"] > 0


def test_training_can_evaluate_its_best_checkpoint(make_cfg, tmp_path):
    cheap = ["evaluation.metrics=cheap", "evaluation.samples=100", "evaluation.silhouette_sample=40"]
    train(make_cfg("trainer.max_epochs=2", *cheap))
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert {"samples/fid", "recon/accuracy", "test/active_units"} <= set(metrics)
    assert "test/nll" not in metrics  # cheap: no importance sampling
    # the trainer's ELBO (grey levels, as served) is kept beside the evaluation's (the fixed binarization)
    assert metrics["test/elbo"] == pytest.approx(-(metrics["test/recon"] + metrics["test/kl"]), rel=1e-5)
    assert metrics["test/eval_elbo"] < 0 and metrics["test/eval_elbo"] != metrics["test/elbo"]
    (entry,) = json.loads((tmp_path / "checkpoints" / "eval.json").read_text()).values()
    assert entry["nll_protocol"].startswith("not computed (metrics=cheap)")


@pytest.mark.slow
def test_evaluate_command_on_a_sweep_folder(mnist_root, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "model=vae,ae", f"data.root={mnist_root}", f"paths.root_dir={tmp_path}", *TINY]
    train_py(*args, f"hydra.sweep.dir={sweep}", check=True)
    command = [sys.executable, "evaluate.py", f"ckpt_path={sweep}", "evaluation.nll.k=10", "evaluation.samples=100"]
    result = prestarted.run([*command, "evaluation.silhouette_sample=40"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test/nll" in result.stdout + result.stderr
    assert len(list(sweep.glob("*/checkpoints/eval.json"))) == 2
    assert (sweep / "noise_robustness.png").is_file()
    assert not (PROJECT / "evaluate.log").exists()  # nothing written where it was launched


@pytest.mark.parametrize("backbone", ["mlp", "conv"])
@pytest.mark.parametrize("metrics", ["cheap", "all"])
def test_a_run_at_another_image_size_is_evaluated(make_cfg, tmp_path, backbone, metrics):
    # the likelihood is measured at the model's 32x32, the classifier's metrics at its 28x28
    train(make_cfg("data.image_size=32", f"backbone={backbone}", f"evaluation.metrics={metrics}", *TINY_EVALUATION))
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["status"] == "completed"
    assert ("test/nll" in summary["metrics"]) == (metrics == "all") and "samples/fid" in summary["metrics"]


def test_eval_elbo_is_measured_on_the_images_the_trainer_tested(make_cfg, monkeypatch):
    measured = []

    def spy(model, x, *args, **kwargs):
        measured.append(x.cpu())
        return iw_log_likelihood(model, x, *args, **kwargs)

    monkeypatch.setattr("vae.evaluation.likelihood.iw_log_likelihood", spy)
    cfg = make_cfg(
        "data.binarize=static", "evaluation.metrics=cheap", "trainer.limit_test_batches=1.0", *TINY_EVALUATION
    )
    train(cfg)
    datamodule = build(cfg)[0]
    datamodule.setup("test")
    tested = torch.cat([x for x, _ in datamodule.test_dataloader()])  # what the trainer's test/elbo averaged over
    assert torch.equal(torch.cat(measured), tested)
    protocol = json.loads((Path(cfg.paths.output_dir) / "checkpoints" / "eval.json").read_text())
    (entry,) = protocol.values()
    assert "data module's fixed test draw (data.split_seed=0)" in entry["nll_protocol"]


@pytest.mark.parametrize("data, std", [("mnist", 0.3081), ("fashion_mnist", 0.3530)])
def test_a_normalized_gaussian_likelihood_is_reported_in_pixel_units(make_cfg, tmp_path, data, std):
    gaussian = ["likelihood=gaussian", "data.normalize=true", "trainer.limit_test_batches=1.0", f"data={data}"]
    train(make_cfg(*gaussian, "evaluation.metrics=all", *TINY_EVALUATION))
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    # the dataset's own deviation: log p(pixels) = log p(standardized) - D ln(std), -923 nats for MNIST's, -816 for
    # Fashion-MNIST's
    jacobian = 784 * math.log(std)
    # the trainer's test/elbo is on the standardized images; the evaluation's on the same images, in pixel units
    assert metrics["test/eval_elbo"] == pytest.approx(metrics["test/elbo"] - jacobian, abs=20)
    assert metrics["test/nll"] <= -metrics["test/eval_elbo"] + 20
    (entry,) = json.loads((tmp_path / "checkpoints" / "eval.json").read_text()).values()
    assert "[0, 1] pixel" in entry["nll_protocol"]


@pytest.mark.parametrize("likelihood", [Bernoulli(), Gaussian(variance=0.01)], ids=["bernoulli", "gaussian"])
def test_prior_samples_are_decoder_means_or_pixels_drawn_from_the_likelihood(likelihood):
    torch.manual_seed(0)
    model, settings = VAE(latent_dim=2, likelihood=likelihood).eval(), small()
    means, kind = prior_samples(model, settings)
    assert kind.startswith("decoder means E[x|z]")
    settings.sample_pixels = "sampled"
    drawn, kind = prior_samples(model, settings)  # the same codes, then x ~ p(x|z)
    assert kind.startswith("pixels drawn from p(x|z)") and drawn.shape == means.shape == (200, 1, 28, 28)
    assert (drawn - means).mean().abs() < 0.01  # centred on the means
    if likelihood.name == "bernoulli":
        assert set(drawn.unique().tolist()) == {0.0, 1.0}
    else:
        assert (drawn - means).std().item() == pytest.approx(0.1, rel=0.05)
    generated, kind = prior_samples(GAN(latent_dim=2).eval(), settings)  # a GAN's samples are its outputs
    assert kind.startswith("generator outputs G(z)") and generated.shape == (200, 1, 28, 28)
