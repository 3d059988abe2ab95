"""Importance-weighted estimate of log p(x) (Burda, Grosse & Salakhutdinov, 2016)."""

import math

import torch
from torch.distributions import Normal

from vae.data.tensors import MNIST_STD
from vae.models.vae import VAE


@torch.no_grad()
def iw_log_likelihood(model: VAE, x: torch.Tensor, k: int, chunk: int = 1000) -> torch.Tensor:
    """log p(x) ≈ log (1/k) Σ_i p(x, z_i) / q(z_i | x) with z_i ~ q(z | x), per image.

    The IWAE bound: a lower bound on log p(x) that rises towards it as ``k`` grows (k = 1 is
    the ELBO). Samples are drawn ``chunk`` at a time, so memory grows with ``chunk * len(x)``,
    never with ``k``; the log-sum-exp over the k weights runs in float64.

    Args:
        model: a VAE (its encoder, decoder and likelihood).
        x: images ``(B, C, H, W)``.
        k: importance samples per image.
        chunk: samples decoded at once.

    Returns:
        ``(B,)`` float64, nats per image; -log p(x) is the NLL.
    """
    mu, logvar = model.encode(x)  # (B, D) each
    q, prior = Normal(mu.float(), torch.exp(0.5 * logvar.float())), Normal(0.0, 1.0)
    log_weights = []
    for n in [chunk] * (k // chunk) + ([k % chunk] if k % chunk else []):
        z = q.sample((n,))  # (n, B, D)
        x_rep = x.expand(n, *x.shape).flatten(0, 1)  # (n * B, C, H, W)
        log_lik = -model.likelihood.nll(model.decoder(z.flatten(0, 1).to(x.dtype)), x_rep).view(n, -1)  # (n, B)
        log_weights.append((log_lik + prior.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)).double())
    return torch.logsumexp(torch.cat(log_weights), dim=0) - math.log(k)  # (B,)


def in_pixel_units(log_px: torch.Tensor, n_pixels: int, std: float = MNIST_STD) -> torch.Tensor:
    """log p(x) of standardized pixels x' = (x - mean) / std, as the density of the [0, 1] pixels x.

    Change of variables: p(x) = p(x') |dx'/dx| = p(x') / std per pixel, so
    log p(x) = log p(x') - D ln(std) (NLL_pixels = NLL_standardized + D ln(std); for MNIST's
    std and 784 pixels the NLL drops by about 923 nats). Only in pixel units do likelihoods of
    models trained with and without ``data.normalize`` compare.

    Args:
        log_px: log-likelihoods of standardized images, any shape.
        n_pixels: D, the pixels of one image.
        std: the deviation the pixels were divided by.
    """
    return log_px - n_pixels * math.log(std)
