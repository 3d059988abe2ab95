"""The loss terms against closed forms, hand-computed values and Monte-Carlo estimates."""

import math

import pytest
import torch
from torch.distributions import Normal

from vae.likelihoods import Bernoulli, Gaussian
from vae.losses import bernoulli_nll, gaussian_nll, kl_standard_normal, negative_elbo
from vae.models.vae import reparameterize


def test_kl_closed_form_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 4), torch.randn(3, 4) * 0.5
    q, p = Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)
    z = q.sample((200_000,))  # (S, 3, 4)
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).mean(0)
    torch.testing.assert_close(kl_standard_normal(mu, logvar), monte_carlo, atol=0.02, rtol=0.02)


def test_kl_is_zero_for_the_prior_and_positive_otherwise():
    zeros = torch.zeros(2, 5)
    assert torch.equal(kl_standard_normal(zeros, zeros), zeros)
    assert (kl_standard_normal(torch.full((2, 5), 0.1), zeros) > 0).all()


def test_bernoulli_nll_by_hand():
    # one image of two pixels: x = (1, 0), p = sigmoid(logits) = (0.8, 0.3)
    p = torch.tensor([0.8, 0.3])
    logits = torch.log(p / (1 - p)).view(1, 1, 1, 2)
    x = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    expected = -(math.log(0.8) + math.log(0.7))
    torch.testing.assert_close(bernoulli_nll(logits, x), torch.tensor([expected]))


def test_gaussian_nll_by_hand():
    mean = torch.tensor([[0.0, 1.0, 2.0]])
    x = torch.tensor([[1.0, 1.0, 0.0]])
    variance = 0.5
    sse = 1.0 + 0.0 + 4.0
    expected = sse / (2 * variance) + 1.5 * math.log(2 * math.pi * variance)
    torch.testing.assert_close(gaussian_nll(mean, x, variance), torch.tensor([expected]))


def test_gaussian_nll_is_the_normal_log_density():
    torch.manual_seed(0)
    mean, x = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    expected = -Normal(mean, math.sqrt(0.3)).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_nll(mean, x, 0.3), expected)


def test_losses_are_summed_over_pixels_and_kept_per_image():
    logits, x = torch.zeros(5, 1, 28, 28), torch.ones(5, 1, 28, 28)
    nll = bernoulli_nll(logits, x)
    assert nll.shape == (5,)
    torch.testing.assert_close(nll, torch.full((5,), 784 * math.log(2)))


def test_negative_elbo_weights_only_the_kl_by_beta():
    recon, kl_per_dim = torch.tensor([10.0, 20.0]), torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    terms = negative_elbo(recon, kl_per_dim, beta=4.0)
    assert terms["loss"].item() == pytest.approx(15 + 4 * 5)
    assert terms["recon"].item() == pytest.approx(15)
    assert terms["kl"].item() == pytest.approx(5)
    assert terms["elbo"].item() == pytest.approx(-20)  # the ELBO itself does not depend on beta
    torch.testing.assert_close(terms["kl_per_dim"], torch.tensor([2.0, 3.0]))
    assert not terms["recon"].requires_grad


def test_gradients_flow_through_the_reparameterization():
    mu = torch.zeros(3, 2, requires_grad=True)
    logvar = torch.zeros(3, 2, requires_grad=True)
    z = reparameterize(mu, logvar, n_samples=4)
    assert z.shape == (12, 2)
    z.pow(2).sum().backward()
    assert mu.grad is not None and mu.grad.abs().sum() > 0
    assert logvar.grad is not None and logvar.grad.abs().sum() > 0


def test_reparameterization_samples_the_posterior():
    torch.manual_seed(0)
    mu, logvar = torch.tensor([[1.0, -2.0]]), torch.log(torch.tensor([[0.25, 4.0]]))
    z = reparameterize(mu, logvar, n_samples=100_000)
    torch.testing.assert_close(z.mean(0), mu[0], atol=0.03, rtol=0)
    torch.testing.assert_close(z.var(0), torch.tensor([0.25, 4.0]), atol=0.05, rtol=0.02)


def test_likelihood_means_are_what_is_shown():
    output = torch.tensor([[-2.0, 0.0, 3.0]])
    torch.testing.assert_close(Bernoulli().mean(output), torch.sigmoid(output))
    torch.testing.assert_close(Gaussian().mean(output), output)
    torch.testing.assert_close(Gaussian(sigmoid_mean=True).mean(output), torch.sigmoid(output))
    # the Bernoulli loss takes logits: applying a sigmoid first would change the value
    x = torch.tensor([[0.0, 1.0, 1.0]])
    assert not torch.allclose(Bernoulli().nll(output, x), Bernoulli().nll(torch.sigmoid(output), x))


def test_losses_are_float32_for_bfloat16_inputs():
    torch.manual_seed(0)
    logits, x = torch.randn(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    mu, logvar = torch.randn(4, 8), torch.randn(4, 8)
    low = (logits.bfloat16(), x.bfloat16(), mu.bfloat16(), logvar.bfloat16())
    for value, reference in [
        (bernoulli_nll(low[0], low[1]), bernoulli_nll(low[0].float(), low[1].float())),
        (gaussian_nll(low[0], low[1], 0.5), gaussian_nll(low[0].float(), low[1].float(), 0.5)),
        (kl_standard_normal(low[2], low[3]), kl_standard_normal(low[2].float(), low[3].float())),
    ]:
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, reference)  # summed in float32, not in bfloat16
