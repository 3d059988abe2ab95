"""The VampPrior against direct computations and the cases whose answer is known."""

import json
import math

import pytest
import torch
from omegaconf import OmegaConf
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from tests.conftest import TINY_EVALUATION
from tests.tensorboard_events import load_events
from tests.test_metrics import linear_gaussian_vae
from vae.losses import kl_standard_normal, log_normal_mixture, log_standard_normal
from vae.metrics import iw_log_likelihood
from vae.models import IWAE, VAE
from vae.training import build, train
from vae.utils import load_model

VARIANCE = 0.3


def mixture(mu: torch.Tensor, logvar: torch.Tensor) -> MixtureSameFamily:
    """torch.distributions' equal-weight mixture of diagonal Gaussians: the direct computation."""
    components = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    return MixtureSameFamily(Categorical(logits=torch.zeros(len(mu), dtype=mu.dtype)), components)


def linear_vamp(pseudo_inputs: int, cls=VAE, prior: str = "vamp", **options) -> VAE:
    """A linear Gaussian VAE on 6-pixel images with a VampPrior: log p(x) is a mixture of Gaussians."""
    return linear_gaussian_vae(VARIANCE, cls, prior=prior, pseudo_inputs=pseudo_inputs, **options)


def components(model: VAE) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return model.encode(model.vamp.inputs)


def exact_log_likelihood(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """x = W z + b + noise with z from the mixture: (1/K) sum_k N(x; W m_k + b, W S_k W^T + variance I)."""
    linear = model.decoder.net[1]
    w, b = linear.weight.double(), linear.bias.double()  # (6, 2), (6,)
    mu, logvar = (t.double() for t in components(model))  # (K, 2) each
    means = mu @ w.T + b  # (K, 6)
    covariances = w @ torch.diag_embed(logvar.exp()) @ w.T + VARIANCE * torch.eye(6, dtype=torch.float64)
    per_component = torch.distributions.MultivariateNormal(means, covariances).log_prob(x.flatten(1).double()[:, None])
    return torch.logsumexp(per_component, dim=1) - math.log(len(mu))  # (B,)


def with_standard_normal_posterior_at_zero(model: VAE) -> VAE:
    """One pseudo-input, at 0, which the linear encoder maps to mu = 0 and logvar = 0: its posterior is N(0, I)."""
    with torch.no_grad():
        model.encoder.net[1].bias.zero_()
        model.vamp.inputs.zero_()
    return model


def test_the_mixture_density_equals_a_direct_mixture_and_does_not_depend_on_its_blocks():
    torch.manual_seed(0)
    mu, logvar, z = torch.randn(5, 3), torch.randn(5, 3), 2 * torch.randn(4, 7, 3)
    direct = mixture(mu, logvar).log_prob(z)  # (4, 7)
    torch.testing.assert_close(log_normal_mixture(z, mu, logvar), direct)
    torch.testing.assert_close(log_normal_mixture(z, mu, logvar, max_elements=15), direct)  # one point a block
    # far from every component, where a sum of densities would underflow to log 0
    far = torch.full((2, 3), 40.0)
    assert torch.isfinite(log_normal_mixture(far, mu, logvar)).all()
    torch.testing.assert_close(
        log_normal_mixture(far.double(), mu, logvar), mixture(mu.double(), logvar.double()).log_prob(far.double())
    )


def test_in_float64_the_expanded_square_gives_the_direct_mixture_also_for_narrow_and_far_components():
    # the likelihood estimate's path: matrix products in float64, against torch.distributions' direct sums
    torch.manual_seed(0)
    mu, logvar = 3 * torch.randn(50, 8, dtype=torch.float64), torch.linspace(-12, 3, 50 * 8).view(50, 8).double()
    z = torch.cat([torch.randn(30, 8, dtype=torch.float64), mu[:5] + 1e-3, torch.full((2, 8), 40.0).double()])
    direct = mixture(mu, logvar).log_prob(z)
    torch.testing.assert_close(log_normal_mixture(z, mu, logvar), direct, rtol=1e-12, atol=1e-8)
    torch.testing.assert_close(log_normal_mixture(z, mu, logvar, max_elements=60), direct, rtol=1e-12, atol=1e-8)


def test_the_model_s_prior_is_the_mixture_of_its_encoder_s_posteriors_at_the_pseudo_inputs():
    model = linear_vamp(pseudo_inputs=4)
    z = torch.randn(10, 2)
    with torch.no_grad():
        torch.testing.assert_close(model.prior_log_density()(z), mixture(*components(model)).log_prob(z))


def test_one_pseudo_input_whose_posterior_is_standard_normal_is_the_standard_prior():
    model = with_standard_normal_posterior_at_zero(linear_vamp(pseudo_inputs=1))
    z = 3 * torch.randn(50, 2)
    with torch.no_grad():
        torch.testing.assert_close(model.prior_log_density()(z), log_standard_normal(z))


def test_the_monte_carlo_kl_agrees_with_the_closed_form_under_the_standard_prior():
    # the VampPrior's KL is estimated from the samples of z; against N(0, I) its mean is the closed form
    model = with_standard_normal_posterior_at_zero(linear_vamp(pseudo_inputs=1, mc_samples=20_000))
    x = 3 * torch.randn(8, 1, 2, 3)
    torch.manual_seed(1)
    with torch.no_grad():
        estimate = model.loss_terms(x)["kl"]
        closed = kl_standard_normal(*model.encode(x)).sum(1).mean()
    assert closed > 1  # the images' posteriors are not the prior
    assert estimate.item() == pytest.approx(closed.item(), abs=0.03)  # about 6 standard errors


@pytest.mark.parametrize("prior", ["standard", "vamp"])
def test_the_iw_estimate_is_a_direct_sum_over_the_same_samples(prior):
    model = linear_vamp(pseudo_inputs=3, prior=prior)
    x, k = torch.randn(5, 1, 2, 3), 7
    torch.manual_seed(4)
    estimate = iw_log_likelihood(model, x, k=k, max_decodes=4)  # several passes
    torch.manual_seed(4)
    with torch.no_grad():
        mu, logvar = (t.double() for t in model.encode(x))
        eps = torch.randn(k, *mu.shape).double()  # the estimate's draws, in its order
        z = mu + torch.exp(0.5 * logvar) * eps  # (k, B, 2)
        p_z = Independent(Normal(torch.zeros(2, dtype=torch.float64), 1.0), 1)
        if model.vamp is not None:
            p_z = mixture(*(t.double() for t in components(model)))
        decoded = model.decoder(z.flatten(0, 1).float()).double().view(k, *x.shape)
        log_lik = Normal(decoded, math.sqrt(VARIANCE)).log_prob(x.double()).flatten(2).sum(-1)  # (k, B)
        log_w = log_lik + p_z.log_prob(z) - Independent(Normal(mu, torch.exp(0.5 * logvar)), 1).log_prob(z)
    direct = torch.logsumexp(log_w, dim=0) - math.log(k)
    torch.testing.assert_close(estimate, direct, atol=1e-5, rtol=0)


def test_the_iw_bound_under_the_vampprior_rises_with_k_towards_the_exact_log_likelihood():
    model = linear_vamp(pseudo_inputs=3)
    x = torch.randn(100, 1, 2, 3)
    exact = exact_log_likelihood(model, x).mean()
    bounds = []
    for k in (1, 10, 100, 1000):
        estimates = []
        for seed in range(3):  # averaged over seeds: each bound's Monte-Carlo noise is below the steps between them
            torch.manual_seed(seed)
            estimates.append(iw_log_likelihood(model, x, k=k, max_decodes=1000 * len(x)).mean())
        bounds.append(torch.stack(estimates).mean())
    assert all(a < b for a, b in zip(bounds, bounds[1:], strict=False))
    assert bounds[-1] <= exact + 0.01  # a lower bound, up to Monte-Carlo noise
    assert exact - bounds[-1] < 0.1 * (exact - bounds[0])  # most of the gap closed


def test_samples_come_from_the_mixture_and_repeat_with_the_generator():
    model = linear_vamp(pseudo_inputs=2)
    with torch.no_grad():  # two narrow components, at z = (10, 0) and (-10, 0)
        model.encoder.net[1].weight.zero_()
        model.encoder.net[1].bias.copy_(torch.tensor([0.0, 0.0, -6.0, -6.0]))
        model.vamp.inputs.zero_()
        model.encoder.net[1].weight[0, 0] = 10.0
        model.vamp.inputs[0, 0, 0, 0], model.vamp.inputs[1, 0, 0, 0] = 1.0, -1.0
    z = model.sample_prior(4000, torch.Generator().manual_seed(0))
    assert z.shape == (4000, 2)
    assert (z[:, 0].abs() - 10).abs().max() < 0.5  # every draw near one of the two components
    assert 0.45 < (z[:, 0] > 0).double().mean() < 0.55  # each picked half of the time
    torch.testing.assert_close(z, model.sample_prior(4000, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("cls", [VAE, IWAE])
def test_the_pseudo_inputs_train_with_the_model(cls):
    model = linear_vamp(pseudo_inputs=3, cls=cls).train()
    model.loss_terms(torch.randn(4, 1, 2, 3))["loss"].backward()
    assert model.vamp.inputs.grad is not None and model.vamp.inputs.grad.abs().sum() > 0
    assert "kl_per_dim" not in model.loss_terms(torch.randn(4, 1, 2, 3))  # a mixture's KL does not split by dimension


def test_pseudo_inputs_start_as_training_images_or_as_the_paper_s_random_pixels(make_cfg):
    for init in ("data", "random"):
        cfg = make_cfg("model.prior=vamp", "model.pseudo_inputs=6", f"model.pseudo_inputs_init={init}")
        datamodule, model = build(cfg)[:2]
        datamodule.prepare_data()
        datamodule.setup("fit")
        model.vamp.start_from(datamodule)
        inputs = model.vamp.inputs.detach()
        if init == "data":  # six distinct training images, the same for every process and run
            torch.testing.assert_close(inputs, datamodule.training_images(6))
            stored = {tuple(x.flatten().tolist()) for x in datamodule.train_dataset[torch.arange(120 - 40)][0]}
            assert all(tuple(x.flatten().tolist()) in stored for x in inputs)
        else:
            assert inputs.mean().item() == pytest.approx(0.05, abs=0.005) and inputs.std().item() < 0.02


def test_a_vampprior_run_draws_its_pseudo_inputs_and_is_measured_with_its_prior(make_cfg, tmp_path):
    overrides = ["model.prior=vamp", "model.pseudo_inputs=16", "trainer.max_epochs=2", "evaluation.metrics=all"]
    cfg = make_cfg(*overrides, *TINY_EVALUATION)
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(cfg, tmp_path / ".hydra" / "config.yaml")  # as @hydra.main does, for load_model
    train(cfg)
    events = load_events(tmp_path)
    tags = events.Tags()
    grids = events.Images("images/pseudo_inputs")
    assert [g.step for g in grids] == [e.step for e in events.Scalars("val/loss")]  # after each epoch
    assert (grids[-1].width, grids[-1].height) == (
        8 * 30 + 2,
        4 * 30 + 2,
    )  # 16 inputs: 2 rows, each above its decodings
    assert "figures/kl_per_dim" not in tags["images"] and not any("kl_per_dim" in t for t in tags["scalars"])
    results = json.loads((tmp_path / "checkpoints" / "eval.json").read_text())
    (entry,) = results.values()
    assert entry["samples_kind"] == "decoder means E[x|z], z ~ the VampPrior (16 pseudo-inputs)"
    assert math.isfinite(entry["test/nll"]) and "kl_per_dim" not in entry
    # the checkpoint holds the learned pseudo-inputs, and the rebuilt model has them
    checkpoint = next((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    inputs = torch.load(checkpoint, weights_only=True)["state_dict"]["vamp.inputs"]
    assert inputs.shape == (16, 1, 28, 28)
    torch.testing.assert_close(load_model(checkpoint).vamp.inputs.detach(), inputs)
