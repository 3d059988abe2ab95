"""After a short real fit, the TensorBoard event files hold every picture, figure and curve."""

import json
import random
from types import SimpleNamespace

import pytest
import torch
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as tensorboard_masked_crc32c
from tensorboard.summary.writer import record_writer

from tests.conftest import compose_train
from tests.tensorboard_events import load_events
from vae.callbacks import PriorSamples
from vae.callbacks.base import VisualCallback
from vae.models import VAE
from vae.training import train
from vae.utils.event_files import masked_crc32c, use_compiled_checksums

IMAGES = ["images/reconstructions", "images/prior_samples", "images/latent_traversal", "images/interpolation"]
SCALARS = ["train/loss", "train/recon", "val/loss", "val/recon", "test/loss", "test/recon"]
KL_SCALARS = ["train/kl", "val/kl", "val/elbo", "test/kl", "test/elbo"]


@pytest.mark.parametrize(
    ("model", "backbone", "latent_dim"), [("vae", "mlp", 2), ("vae", "conv", 3), ("ae", "mlp", 5), ("vae", "mlp", 1)]
)
def test_event_file_holds_the_visuals_and_curves(make_cfg, tmp_path, model, backbone, latent_dim):
    cfg = make_cfg(f"model={model}", f"backbone={backbone}", f"model.latent_dim={latent_dim}", "trainer.max_epochs=2")
    train(cfg)
    events = load_events(tmp_path)
    tags = events.Tags()

    figures = ["figures/latent_scatter"] + (["figures/latent_scatter_3d"] if latent_dim == 3 else [])
    scalars = SCALARS + (KL_SCALARS + [f"val/kl_per_dim/z{d}" for d in range(latent_dim)] if model == "vae" else [])
    if model == "vae":
        figures.append("figures/kl_per_dim")
        assert "kl_per_dim" in tags["histograms"]
    assert set(IMAGES + figures) <= set(tags["images"])
    assert set(scalars) <= set(tags["scalars"])
    if model == "ae":
        assert not any("kl" in tag for tag in tags["scalars"] + tags["images"])
    else:  # the per-dimension values add up to the KL of the whole code
        per_dim = sum(events.Scalars(f"val/kl_per_dim/z{d}")[-1].value for d in range(latent_dim))
        assert per_dim == pytest.approx(events.Scalars("val/kl")[-1].value, rel=1e-4)

    # drawn after each of the 2 epochs, then not again at the end (nothing new to draw)
    assert len(events.Images("images/reconstructions")) == 2
    recon = events.Images("images/reconstructions")[-1]
    assert recon.width > 8 * 28 and recon.height > 4 * 28  # 16 images: originals and reconstructions rows
    for name in [tag.split("/")[-1] for tag in IMAGES + figures]:
        assert sorted(p.name for p in (tmp_path / "images" / name).glob("*.png")) == ["epoch_000.png", "epoch_001.png"]
    assert len(events.Scalars("val/loss")) == 2  # one point per epoch
    assert len(events.Scalars("train/loss")) == 2 * 3  # one per step (log_every_n_steps=1, 3 batches)
    # every picture at the step of its epoch's validation: below the next epoch's checkpoint step,
    # from which a resumed run purges events
    val_steps = [event.step for event in events.Scalars("val/loss")]
    assert val_steps == [2, 5]
    for tag in IMAGES + figures:
        assert [event.step for event in events.Images(tag)] == val_steps, tag
    if model == "vae":
        assert [event.step for event in events.Histograms("kl_per_dim")] == val_steps


def test_drawing_pictures_does_not_change_training(mnist_root, tmp_path):
    visuals = ["reconstructions", "prior_samples", "latent_scatter", "latent_traversal", "interpolation", "kl_per_dim"]
    runs = {}
    for name, overrides in [("with", []), ("without", [f"~callbacks.{v}" for v in visuals])]:
        train(compose_train(["trainer.max_epochs=2", *overrides], tmp_path / name, mnist_root))
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())["metrics"]
        runs[name] = {k: v for k, v in metrics.items() if not k.startswith("perf/")}  # results, not timings
    assert not (tmp_path / "without" / "images").exists()
    assert runs["with"] == runs["without"]  # same seed, same numbers, pictures or not


def test_every_n_epochs_and_the_final_draw(make_cfg, tmp_path):
    train(make_cfg("callbacks.every_n_epochs=2", "trainer.max_epochs=3"))
    pngs = sorted(p.name for p in (tmp_path / "images" / "prior_samples").glob("*.png"))
    assert pngs == ["epoch_001.png", "final.png"]  # the 2nd epoch by the schedule, then the end of training
    events = load_events(tmp_path)
    # after the 2nd epoch's validation (logged after 6 batches, at step 5), then after all 9 batches
    assert [event.step for event in events.Images("images/prior_samples")] == [5, 9]
    assert [event.step for event in events.Scalars("val/loss")][1] == 5


class Recorder(VisualCallback):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail, self.seen = fail, []

    def draw(self, trainer, pl_module):
        self.seen.append((pl_module.training, torch.is_grad_enabled()))
        if self.fail:
            raise RuntimeError("drawing failed")


@pytest.mark.parametrize("fail", [False, True])
def test_drawing_happens_in_eval_mode_without_grad_and_restores_train_mode(fail):
    model, callback = VAE(latent_dim=2), Recorder(fail)
    model.train()
    trainer = SimpleNamespace(global_step=0)
    if fail:
        with pytest.raises(RuntimeError):
            callback._run(trainer, model, "epoch_000", step=7)
    else:
        callback._run(trainer, model, "epoch_000", step=7)
    assert callback.seen == [(False, False)]
    assert model.training


def test_prior_samples_decode_the_same_z_at_every_draw(tmp_path):
    model, callback = VAE(latent_dim=4), PriorSamples(n_samples=9)
    trainer = SimpleNamespace(loggers=[], default_root_dir=str(tmp_path), datamodule=None, global_step=0)
    callback._run(trainer, model, "first", step=0)
    callback._run(trainer, model, "second", step=1)
    callback.writer.flush()  # written on a background thread
    folder = tmp_path / "images" / "prior_samples"
    assert (folder / "first.png").read_bytes() == (folder / "second.png").read_bytes()


def test_event_records_get_tensorboard_s_checksum_from_the_compiled_crc32c():
    # prepare_loggers puts it in tensorboard's writer; its reader checks every record of the event files other tests
    # read back
    generator = random.Random(0)
    for size in (0, 1, 7, 4096, 120_001):
        data = generator.randbytes(size)
        assert masked_crc32c(data) == tensorboard_masked_crc32c(data)
    use_compiled_checksums()
    assert record_writer.masked_crc32c is masked_crc32c
