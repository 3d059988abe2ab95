"""The LightningModules' loss terms, sampling, warm-up, saved hyperparameters and what their steps log."""

import sys
from functools import partial
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from tests.tensorboard_events import load_events
from vae.likelihoods import Gaussian
from vae.models import VAE, AutoEncoder
from vae.models.base import ImageMean
from vae.models.vae import reparameterize
from vae.nets import ConvDecoder, ConvEncoder
from vae.training import build, train


@pytest.fixture
def x() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(6, 1, 28, 28)


def test_vae_loss_terms_are_per_image_means(x):
    terms = VAE(latent_dim=5).loss_terms(x)
    assert set(terms) == {"loss", "recon", "kl", "elbo", "kl_per_dim"}
    assert terms["kl_per_dim"].shape == (5,)
    torch.testing.assert_close(terms["loss"], terms["recon"] + terms["kl"])
    torch.testing.assert_close(terms["kl"], terms["kl_per_dim"].sum())
    terms["loss"].backward()  # differentiable end to end


@pytest.mark.parametrize("n_samples", [1, 3])
def test_mc_samples_average_each_images_own_samples(x, n_samples):
    model = VAE(latent_dim=4, mc_samples=n_samples)
    torch.manual_seed(1)
    recon = model.loss_terms(x)["recon"]
    torch.manual_seed(1)
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar, n_samples).view(n_samples, len(x), -1)  # sample-major
    per_image = [
        torch.stack(
            [model.likelihood.nll(model.decoder(z[s, b : b + 1]), x[b : b + 1]) for s in range(n_samples)]
        ).mean()
        for b in range(len(x))
    ]
    torch.testing.assert_close(recon, torch.stack(per_image).mean())


def test_kl_warmup_ramps_beta_during_training_only():
    model = VAE(beta=4.0, kl_warmup_epochs=2)
    model._trainer = SimpleNamespace(global_step=5, num_training_batches=10, accumulate_grad_batches=1)  # half an epoch
    model.train()
    assert model.kl_weight() == pytest.approx(4.0 * 0.25)
    model._trainer.global_step = 40
    assert model.kl_weight() == pytest.approx(4.0)  # capped at beta
    model._trainer.global_step = 5
    model.eval()
    assert model.kl_weight() == 4.0  # validation and test use the full objective
    assert VAE(beta=2.0).kl_weight() == 2.0  # no warm-up, no trainer
    model.train()
    model._trainer.accumulate_grad_batches = 2  # 5 optimizer steps are 10 batches: a whole epoch
    assert model.kl_weight() == pytest.approx(4.0 * 0.5)


def test_beta_scales_the_trained_loss_not_the_reported_terms(x):
    torch.manual_seed(0)
    low = VAE(latent_dim=3, beta=1.0)
    high = VAE(latent_dim=3, beta=8.0)
    high.load_state_dict(low.state_dict())
    torch.manual_seed(2)
    t_low = low.loss_terms(x)
    torch.manual_seed(2)
    t_high = high.loss_terms(x)
    torch.testing.assert_close(t_high["elbo"], t_low["elbo"])
    # float32 difference of two ~540-nat losses: compare to 1e-3 nats
    torch.testing.assert_close(t_high["loss"] - t_low["loss"], 7.0 * t_low["kl"], atol=1e-3, rtol=0)


def test_autoencoder_has_a_deterministic_code_and_no_kl(x):
    model = AutoEncoder(latent_dim=7)
    terms = model.loss_terms(x)
    assert set(terms) == {"loss", "recon"}
    torch.testing.assert_close(model.encode_mean(x), model.encode_mean(x))
    assert model.encode_mean(x).shape == (6, 7)
    last = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert last.out_features == 7  # a point, not (mean, log-variance)


def test_models_take_any_backbone_and_likelihood(x):
    conv = partial(ConvEncoder, channels=[8, 16], strides=[1, 2])
    deconv = partial(ConvDecoder, channels=[8, 16], strides=[1, 2])
    for cls in (VAE, AutoEncoder):
        model = cls(encoder=conv, decoder=deconv, likelihood=Gaussian(variance=0.1), latent_dim=3)
        assert model(x).shape == x.shape
        assert model.decode_mean(torch.randn(2, 3)).shape == (2, 1, 28, 28)
        assert torch.isfinite(model.loss_terms(x)["loss"])


def test_saved_hyperparameters_are_plain_values():
    model = VAE(latent_dim=3, likelihood=Gaussian(), optimizer=partial(torch.optim.SGD, lr=0.1))
    expected = {
        "img_shape",
        "latent_dim",
        "beta",
        "mc_samples",
        "kl_warmup_epochs",
        "monitor",
        "prior",
        "pseudo_inputs",
    }
    expected |= {"pseudo_inputs_init", "compile", "channels_last", "init_output_bias"}
    assert set(model.hparams) == expected
    assert isinstance(model.configure_optimizers(), torch.optim.SGD)


@pytest.mark.parametrize("model, name", [("vae", "train/loss"), ("gan", "train/d_loss")])
def test_training_values_reach_the_logger_every_log_every_n_steps(make_cfg, tmp_path, monkeypatch, model, name):
    # 3 batches an epoch, 3 epochs: Lightning writes step values after batches 2, 4, 6 and 8 (1-based),
    # at steps 1, 3, 5 and 7; the models log them only then
    calls, log = [], L.LightningModule.log

    def counted(self, key, *args, **kwargs):
        calls.append(key)
        return log(self, key, *args, **kwargs)

    monkeypatch.setattr(L.LightningModule, "log", counted)
    small = ["model.latent_dim=4", "backbone.hidden_dims=[32]"]
    train(make_cfg(f"model={model}", *small, "trainer.max_epochs=3", "trainer.log_every_n_steps=2", "test=false"))
    assert [event.step for event in load_events(tmp_path).Scalars(name)] == [1, 3, 5, 7]
    assert calls.count(name) == 4  # not 9: each self.log costs as much as a small model's step


def test_kl_warmup_logs_its_weight_as_a_number_and_only_on_logging_steps(make_cfg, tmp_path, monkeypatch):
    built_by_models = []
    tensor = torch.tensor

    def recording_tensor(*args, **kwargs):
        if "/vae/models/" in sys._getframe(1).f_code.co_filename:  # a host-to-device copy on a GPU
            built_by_models.append(args)
        return tensor(*args, **kwargs)

    monkeypatch.setattr(torch, "tensor", recording_tensor)
    train(make_cfg("model.kl_warmup_epochs=2", "trainer.max_epochs=2", "trainer.log_every_n_steps=2", "test=false"))
    assert built_by_models == []
    logged = [(event.step, event.value) for event in load_events(tmp_path).Scalars("train/kl_weight")]
    # 3 batches an epoch: the weight after s steps is (s / 3) / 2 epochs of warm-up
    assert logged == [(1, pytest.approx(1 / 6)), (3, pytest.approx(3 / 6)), (5, pytest.approx(5 / 6))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_epoch_means_stay_exact_when_the_model_is_cast_to_half_precision(dtype):
    # trainer.precision=bf16-true or 16-true casts the model, its metric states with it
    mean = ImageMean().to(dtype)
    for _ in range(625):  # 10,000 images of batches of 16 at 100 nats
        mean.update(torch.tensor(100.0, dtype=dtype), 16)
    mean.update(torch.tensor(3.0, dtype=dtype), 10_000)  # a batch as large as all the others
    assert mean.compute().item() == pytest.approx((100 * 10_000 + 3 * 10_000) / 20_000)


@pytest.mark.parametrize("binarize", ["none", "dynamic", "static"])
@pytest.mark.parametrize("loader", ["tensor", "torchvision"])
def test_the_mean_image_is_the_mean_of_the_training_images_as_served(make_cfg, binarize, loader):
    datamodule, _, _ = build(make_cfg(f"data.binarize={binarize}", f"data.loader={loader}", "data.image_size=32"))
    datamodule.setup("fit")
    state = torch.random.get_rng_state()
    mean = datamodule.mean_image()
    assert torch.equal(torch.random.get_rng_state(), state)  # computed from the pixels, drawing nothing
    if binarize == "dynamic":  # served images are fresh draws: their expectation is the grey levels' mean
        grey, _, _ = build(make_cfg("data.binarize=none", f"data.loader={loader}", "data.image_size=32"))
        grey.setup("fit")
        served = torch.stack([grey.train_dataset[i][0] for i in range(len(grey.train_dataset))])
    else:
        served = torch.stack([datamodule.train_dataset[i][0] for i in range(len(datamodule.train_dataset))])
    assert mean.shape == (1, 32, 32)
    torch.testing.assert_close(mean, served.mean(0), atol=1e-5, rtol=0)


class OutputBias(L.Callback):
    """The decoder's last bias when training starts, before the first step."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        biased = [m for m in pl_module.decoder.modules() if getattr(m, "bias", None) is not None]
        self.bias = biased[-1].bias.detach().clone()


@pytest.mark.parametrize("backbone", ["mlp", "conv"])
def test_the_decoder_s_output_bias_starts_at_the_logit_of_the_training_pixels_mean(make_cfg, backbone):
    datamodule, model, trainer = build(make_cfg(f"backbone={backbone}", "model.init_output_bias=true"))
    trainer.callbacks.append(seen := OutputBias())
    trainer.fit(model, datamodule=datamodule)
    mean = datamodule.mean_image().clamp(1e-3, 1 - 1e-3)  # (1, 28, 28)
    if backbone == "mlp":  # one bias per pixel
        torch.testing.assert_close(seen.bias.view(1, 28, 28), torch.logit(mean))
    else:  # a conv's bias is per channel: the logit of the mean pixel
        torch.testing.assert_close(seen.bias, torch.logit(mean.mean()).view(1))
