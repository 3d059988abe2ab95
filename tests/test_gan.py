"""The GAN baseline: alternating updates, both losses moving, samples, checkpoints ranked by FID, evaluation."""

import json
import sys
from functools import partial

import hydra
import lightning as L
import pytest
import torch

from tests import prestarted
from tests.conftest import TINY
from tests.tensorboard_events import load_events
from vae.callbacks import NonFiniteLossError, TrainingChecks
from vae.config import ConfigError
from vae.evaluation import evaluate_checkpoint
from vae.losses import discriminator_loss, generator_loss
from vae.models import GAN
from vae.training import train
from vae.utils import load_model

TRAIN = [sys.executable, "train.py"]
GAN_TINY = ["model=gan", "model.latent_dim=4", "backbone.hidden_dims=[32]", "trainer.limit_train_batches=4"]  # of 5


class OptimizerOrder(L.Callback):
    """Records which network each optimizer step updates."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        generator_params = {id(p) for p in pl_module.generator.parameters()}
        updated = optimizer.param_groups[0]["params"][0]
        self.steps.append("g" if id(updated) in generator_params else "d")


def test_losses_have_their_known_values():
    confident = torch.full((4, 1), 20.0)  # D(x) ~ 1
    assert discriminator_loss(confident, -confident).item() == pytest.approx(0.0, abs=1e-6)
    undecided = torch.zeros(4, 1)  # D = 1/2 everywhere: log 2 for each half
    assert discriminator_loss(undecided, undecided).item() == pytest.approx(2 * torch.log(torch.tensor(2.0)).item())
    assert generator_loss(undecided).item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    smoothed = discriminator_loss(confident, -confident, real_target=0.9).item()
    assert smoothed > 1.0  # label smoothing penalizes over-confidence on real images


def fit(cfg, *callbacks: L.Callback, before: dict | None = None) -> GAN:
    """The configured GAN, fitted on 4 batches by a bare trainer (no validation, files or logs).
    ``before`` receives copies of the initial parameters."""
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model, img_shape=datamodule.img_shape, _convert_="all")
    if before is not None:
        before.update({name: p.detach().clone() for name, p in model.named_parameters()})
    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    trainer = L.Trainer(max_epochs=1, limit_train_batches=4, limit_val_batches=0, callbacks=list(callbacks), **quiet)
    trainer.fit(model, datamodule=datamodule)
    return model


@pytest.mark.parametrize("d_steps, expected", [(1, "dgdgdgdg"), (2, "ddgddg")])
def test_generator_and_discriminator_updates_alternate(make_cfg, d_steps, expected):
    order = OptimizerOrder()
    fit(make_cfg(*GAN_TINY, f"model.d_steps={d_steps}"), order)
    assert "".join(order.steps) == expected


def test_a_few_steps_move_both_losses_and_make_samples(make_cfg, tmp_path):
    cfg = make_cfg(*GAN_TINY, "model.label_smoothing=0.1", "model.instance_noise=0.05", "optimized_metric=val/fid")
    optimized = train(cfg)
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["status"] == "completed"
    assert optimized == summary["metrics"]["val/fid"]  # what a sweeper ranks GANs by
    assert summary["metrics"]["val/fid"] > 0 and summary["metrics"]["test/fid"] > 0
    # ranked by val/fid: a GAN has no validation loss
    assert summary["best_checkpoint"].endswith("epoch_000.ckpt")

    events = load_events(tmp_path)
    for name in ("train/d_loss", "train/g_loss"):
        values = [event.value for event in events.Scalars(name)]
        assert len(values) == 4 and len(set(values)) > 1, name  # logged every step, and moving
    # the loggers' step counts batches, not the 2 optimizer steps of each: samples at the validation's step
    assert [event.step for event in events.Images("images/prior_samples")] == [3]
    assert [event.step for event in events.Scalars("val/fid")] == [3]
    assert not (tmp_path / "images" / "reconstructions").exists()  # nothing to reconstruct with
    assert not (tmp_path / "projector_config.pbtxt").exists()  # no codes of images for the Projector
    (layout,) = events.Tensors("custom_scalars__config__")
    assert b"^train/(d|g)_loss$" in layout.tensor_proto.string_val[0]  # its own charts

    model = load_model(summary["best_checkpoint"], run_cfg=cfg)
    assert isinstance(model, GAN)
    samples = model.decode_all(torch.randn(10, 4))
    assert samples.shape == (10, 1, 28, 28) and 0 <= samples.min() and samples.max() <= 1
    checkpoint = torch.load(summary["best_checkpoint"], weights_only=True)
    assert not [k for k in checkpoint["state_dict"] if "classifier" in k]  # the FID's classifier is not saved


def test_training_moves_the_generator_and_the_discriminator(make_cfg):
    before = {}
    trained = fit(make_cfg(*GAN_TINY), before=before)
    moved = {name.split(".")[0] for name, p in trained.named_parameters() if not torch.equal(p, before[name])}
    assert moved == {"generator", "discriminator"}


def test_evaluation_measures_samples_and_says_there_is_no_likelihood(make_cfg, tmp_path, mnist_root):
    cfg = make_cfg(*GAN_TINY, "evaluation.samples=50", "evaluation.metrics=cheap")
    train(cfg)
    results = json.loads((tmp_path / "checkpoints" / "eval.json").read_text())
    (result,) = results.values()
    assert result["test/nll"] is None and "a GAN defines no likelihood" in result["nll_protocol"]
    assert 1.0 <= result["samples/inception_score"] <= 10.0 and result["samples/fid"] > 0
    assert sum(result["samples/class_histogram"]) == 50
    assert "recon/accuracy" not in result and "test/knn_accuracy" not in result
    assert (tmp_path / "images" / "eval" / "class_histogram.png").is_file()
    last = tmp_path / "checkpoints" / "last.ckpt"
    again = evaluate_checkpoint(last, cfg.evaluation, torch.device("cpu"), str(mnist_root), run_cfg=cfg)
    assert again["samples/fid"] > 0
    # on the training curves' axis: after the 4 batches trained (8 optimizer steps), twice
    events = load_events(tmp_path)
    assert result["step"] == again["step"] == 4
    assert [event.step for event in events.Scalars("samples/fid")] == [4, 4]
    assert [event.step for event in events.Images("eval/class_histogram")] == [4, 4]


def test_a_non_finite_loss_stops_the_gan_and_names_its_terms(make_cfg, tmp_path):
    poison = ["+callbacks.poison._target_=tests.helpers.PoisonWeights", "+callbacks.poison.module=generator"]
    # 4 batches an epoch, two optimizer steps each: step 8 is the first batch of the second epoch
    with pytest.raises(NonFiniteLossError) as error:
        train(make_cfg(*GAN_TINY, "trainer.max_epochs=3", *poison, "+callbacks.poison.step=8"))
    assert "at training step 8 (epoch 1), in the d_loss and g_loss terms" in str(error.value)
    assert "model.optimizer.lr" in str(error.value)
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["status"] == "failed"
    assert torch.load(summary["last_checkpoint"], weights_only=True)["epoch"] == 0  # the last good one


def test_the_gan_refuses_normalized_pixels_at_the_first_batch(make_cfg):
    # validation refuses this config before anything is built; the first-batch check also catches such
    # data (e.g. from another data module), so it is tested here without validation
    with pytest.raises(ConfigError, match=r"model=gan: needs pixels in \[0, 1\], .*use data.normalize=false"):
        fit(make_cfg(*GAN_TINY, "likelihood=gaussian", "data.normalize=true"), TrainingChecks())


def test_optimizing_a_metric_the_gan_does_not_log_names_the_ones_it_does(make_cfg):
    # e.g. hparams_search=optuna (val/elbo) with model=gan: a sweeper would get no value to rank
    with pytest.raises(ConfigError, match=r"optimized_metric='val/elbo': vae.models.GAN does not log it; .*val/fid"):
        train(make_cfg(*GAN_TINY, "optimized_metric=val/elbo"))


@pytest.mark.parametrize("backbone", ["mlp", "conv"])
def test_the_gan_trains_on_images_larger_than_the_classifier_s(make_cfg, tmp_path, backbone):
    # the FID's reference classifier takes 28x28 images: 32x32 ones are resized for it
    conv = ["backbone.channels=[8,8]", "backbone.strides=[2,2]"]
    small = ["backbone.hidden_dims=[32]"] if backbone == "mlp" else conv
    gan = [o for o in GAN_TINY if "hidden_dims" not in o]
    cfg = make_cfg(*gan, f"backbone={backbone}", *small, "data.image_size=32", "trainer.limit_train_batches=1")
    train(cfg)
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["metrics"]["val/fid"] > 0


@pytest.mark.slow
def test_a_gan_killed_and_resumed_continues_its_curves_without_doubled_steps(mnist_root, tmp_path):
    # 4 batches an epoch, 2 optimizer steps each: killed after step 20, in the 3rd epoch, past the
    # checkpoint of the 2nd (at step 16, the logger's step 8)
    args = [f"data.root={mnist_root}", f"paths.root_dir={tmp_path}", *TINY, *GAN_TINY, "trainer.max_epochs=3"]
    kill = ["+callbacks.kill._target_=tests.helpers.KillAtStep", "+callbacks.kill.step=20"]
    unbroken, killed = tmp_path / "unbroken", tmp_path / "killed"
    run = partial(prestarted.run, timeout=600)
    run([*TRAIN, *args, f"hydra.run.dir={unbroken}"], check=True)
    died = run([*TRAIN, *args, *kill, f"hydra.run.dir={killed}"])
    assert died.returncode == -9
    assert json.loads((killed / "metrics.json").read_text())["status"] == "running"  # what a kill leaves
    resumed = run([*TRAIN, f"resume={killed}"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    resumed_events, unbroken_events = load_events(killed), load_events(unbroken)
    steps = [event.step for event in resumed_events.Scalars("train/d_loss")]
    assert steps == sorted(set(steps)) == [event.step for event in unbroken_events.Scalars("train/d_loss")]
    # the samples drawn before the checkpoint survive its purge: one per epoch, at the validation's step
    samples = [event.step for event in resumed_events.Images("images/prior_samples")]
    assert samples == [event.step for event in unbroken_events.Images("images/prior_samples")] == [3, 7, 11]
