"""Quality metrics against cases whose answer is known in closed form."""

import math

import pytest
import torch
from torch import nn
from torch.distributions import MultivariateNormal

from vae.likelihoods import Gaussian
from vae.metrics import in_pixel_units, iw_log_likelihood
from vae.models import VAE


class Linear(nn.Module):
    """An affine map on flat vectors, reshaped to ``out_shape``."""

    def __init__(self, in_dim: int, out_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_dim, math.prod(out_shape)), nn.Unflatten(1, out_shape))

    def forward(self, x):
        return self.net(x)


def linear_gaussian_vae(variance: float = 0.3, cls=VAE, **options) -> VAE:
    """x = W z + b + noise, z ~ N(0, I): log p(x) = log N(x; b, W W^T + variance * I), in closed form
    (``options``: more of the model's, such as its prior)."""
    torch.manual_seed(0)
    return cls(
        encoder=lambda in_shape, out_dim: Linear(math.prod(in_shape), (out_dim,)),
        decoder=lambda latent_dim, out_shape: Linear(latent_dim, tuple(out_shape)),
        likelihood=Gaussian(variance=variance),
        img_shape=(1, 2, 3),
        latent_dim=2,
        **options,
    ).eval()


def exact_log_likelihood(model: VAE, x: torch.Tensor, variance: float) -> torch.Tensor:
    linear = model.decoder.net[1]
    w, b = linear.weight.double(), linear.bias.double()  # (6, 2), (6,)
    covariance = w @ w.T + variance * torch.eye(6, dtype=torch.float64)
    return MultivariateNormal(b, covariance).log_prob(x.flatten(1).double())


def with_exact_posterior(model: VAE, variance: float) -> VAE:
    """Gives the decoder orthogonal columns and sets the encoder to the exact posterior,
    N(S W^T (x - b) / variance, S) with S = (I + W^T W / variance)^-1, diagonal for such W."""
    decoder, encoder = model.decoder.net[1], model.encoder.net[1]
    q, _ = torch.linalg.qr(torch.randn(6, 2))
    w = q * torch.tensor([2.0, 0.7])  # (6, 2), orthogonal columns
    s = torch.diag(1 / (1 + (w**2).sum(0) / variance))  # (2, 2)
    with torch.no_grad():
        decoder.weight.copy_(w)
        gain = s @ w.T / variance  # (2, 6)
        encoder.weight.copy_(torch.cat([gain, torch.zeros(2, 6)]))
        encoder.bias.copy_(torch.cat([-gain @ decoder.bias, torch.log(torch.diag(s))]))
    return model


def test_iw_estimate_is_exact_when_q_is_the_true_posterior():
    model = with_exact_posterior(linear_gaussian_vae(), 0.3)
    x = torch.randn(8, 1, 2, 3)
    exact = exact_log_likelihood(model, x, 0.3)
    for k in (1, 10):  # every importance weight equals p(x): any k gives it exactly
        torch.testing.assert_close(iw_log_likelihood(model, x, k=k), exact, atol=1e-4, rtol=0)


def test_iw_bound_rises_with_k_towards_log_p_x():
    model = linear_gaussian_vae()
    x = torch.randn(200, 1, 2, 3)
    exact = exact_log_likelihood(model, x, 0.3).mean()
    bounds = []
    for k in (1, 10, 100, 1000):
        torch.manual_seed(2)
        bounds.append(iw_log_likelihood(model, x, k=k, max_decodes=256 * len(x)).mean())
    assert all(a < b for a, b in zip(bounds, bounds[1:], strict=False))  # a tighter bound each time
    assert bounds[-1] <= exact + 0.01  # a lower bound, up to Monte-Carlo noise
    assert exact - bounds[-1] < 0.1 * (exact - bounds[0])  # and most of the gap is closed


def test_k_equal_one_is_the_elbo():
    model = linear_gaussian_vae()
    x = torch.randn(400, 1, 2, 3)
    torch.manual_seed(3)
    k1 = iw_log_likelihood(model, x, k=1).mean()
    torch.manual_seed(3)
    elbo = model.loss_terms(x)["elbo"]
    assert k1.item() == pytest.approx(elbo.item(), abs=0.15)  # same estimator, independent noise


@pytest.mark.parametrize("budget", [3, 7, 50, 64])
def test_forward_passes_add_up_to_exactly_k_samples(budget):
    # with the exact posterior every weight is p(x), so the estimate is exact only if the passes
    # hold k samples of each image in all and the sum is divided by k: budgets of 3, 7, 50 and 64
    # decodes take 1, 1, 12 and 16 samples of 3, 4, 4 and 4 images per pass, and 50 = 4 * 12 + 2
    model = with_exact_posterior(linear_gaussian_vae(), 0.3)
    x = torch.randn(4, 1, 2, 3)
    estimate = iw_log_likelihood(model, x, k=50, max_decodes=budget)
    torch.testing.assert_close(estimate, exact_log_likelihood(model, x, 0.3), atol=1e-4, rtol=0)


def test_pixel_units_add_the_jacobian_of_the_standardization():
    # a density on standardized pixels x' = (x - m) / s is the density on pixels x times s per pixel
    torch.manual_seed(0)
    m, s, mean, root = 0.13, 0.31, torch.randn(6, dtype=torch.float64), torch.randn(6, 6, dtype=torch.float64)
    covariance = root @ root.T + torch.eye(6, dtype=torch.float64)
    x = torch.rand(5, 6, dtype=torch.float64)
    standardized = MultivariateNormal(mean, covariance).log_prob((x - m) / s)
    pixels = MultivariateNormal(m + s * mean, s**2 * covariance).log_prob(x)
    torch.testing.assert_close(in_pixel_units(standardized, n_pixels=6, std=s), pixels)


def test_the_memory_budget_changes_the_memory_not_the_estimate():
    model = linear_gaussian_vae()
    x = torch.randn(6, 1, 2, 3)
    estimates = []
    for budget in (4, 6, 50, 10_000):  # below the batch, one sample of each image, several, all k at once
        torch.manual_seed(0)
        estimates.append(iw_log_likelihood(model, x, k=40, max_decodes=budget))
    for estimate in estimates[1:]:
        torch.testing.assert_close(estimate, estimates[0], rtol=1e-6, atol=0)
