"""The IWAE: its objective against the VAE's and the likelihood estimate, on small tensors, and a tiny fit."""

import json
import math

import pytest
import torch

from vae.metrics.likelihood import iw_log_likelihood
from vae.models import IWAE, VAE
from vae.training import train


@pytest.fixture
def x() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(8, 1, 28, 28).bernoulli()


def iwae_like(vae: VAE, k: int) -> IWAE:
    iwae = IWAE(latent_dim=vae.latent_dim, k=k)
    iwae.load_state_dict(vae.state_dict())
    return iwae


def test_with_one_sample_the_iwae_trains_exactly_the_vae(x):
    vae = VAE(latent_dim=4)
    iwae = iwae_like(vae, k=1)
    torch.manual_seed(1)
    vae_terms = vae.loss_terms(x)
    torch.manual_seed(1)
    iwae_terms = iwae.loss_terms(x)
    assert torch.equal(vae_terms["loss"], iwae_terms["loss"])  # to the last bit
    vae_terms["loss"].backward()
    iwae_terms["loss"].backward()
    for (name, a), b in zip(vae.named_parameters(), iwae.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad), name


def test_the_bound_rises_with_k_on_a_fixed_model(x):
    vae = VAE(latent_dim=4)
    with torch.no_grad():
        bounds = []
        for k in (1, 5, 50):
            iwae = iwae_like(vae, k)
            per_seed = []
            for seed in range(10):
                torch.manual_seed(seed)
                per_seed.append(iwae.loss_terms(x)["iwae"])
            bounds.append(torch.stack(per_seed).mean())
    assert bounds[0] < bounds[1] < bounds[2], bounds


def test_the_gradient_reaches_the_encoder_and_the_decoder(x):
    iwae = IWAE(latent_dim=4, k=5)
    iwae.loss_terms(x)["loss"].backward()
    for name, parameter in iwae.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_under_a_kl_warm_up_the_objective_is_the_tempered_bound_and_cannot_run_away(x):
    # With the KL weighted by beta < 1, the weights are tempered, log p(x|z) + beta (log p(z) - log q(z|x)),
    # as the KL is: at beta = 0 the loss is -log (1/k) sum_s p(x|z_s) >= 0 (Bernoulli), whatever q. The gap
    # of the untempered weights instead rewarded an ever wider q without bound (the KL at 5e20 after 3
    # epochs of a warm-up on MNIST).
    iwae = IWAE(latent_dim=4, k=5, beta=0.0)  # the KL warm-up's first step
    iwae.encode = lambda x: (torch.zeros(len(x), 4), torch.full((len(x), 4), 30.0))  # a very wide q(z|x)
    torch.manual_seed(0)
    terms = iwae.loss_terms(x)
    assert terms["loss"] >= 0, terms["loss"]
    assert torch.isfinite(terms["iwae"])  # the bound itself stays the untempered one


def test_the_objective_s_bound_is_the_likelihood_estimate_of_the_same_samples(x):
    iwae = IWAE(latent_dim=4, k=7)
    with torch.no_grad():
        torch.manual_seed(3)
        objective = iwae.loss_terms(x)["iwae"]
        torch.manual_seed(3)
        estimate = iw_log_likelihood(iwae, x, k=7, max_decodes=20)  # in chunks of images and samples
    torch.testing.assert_close(objective.double(), estimate.mean(), rtol=1e-6, atol=1e-3)


def test_model_iwae_trains_and_logs_its_bound_beside_the_elbo(make_cfg, tmp_path):
    train(make_cfg("model=iwae", "model.k=3"))
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["run_name"] == "iwae-mlp-z20-b1"
    metrics = summary["metrics"]
    assert all(math.isfinite(metrics[f"{stage}/{name}"]) for stage in ("val", "test") for name in ("iwae", "elbo"))
    assert summary["config"]["model"]["k"] == 3
