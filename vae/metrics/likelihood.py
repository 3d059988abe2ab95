"""Importance-weighted estimate of log p(x) (Burda, Grosse & Salakhutdinov, 2016)."""

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import torch

from vae.losses import log_mean_exp


class ImportanceSampled(Protocol):
    """What the estimate asks of a model (``vae.models.VAE`` and its subclasses have it): named here, so
    that vae.metrics needs nothing from vae.models, which sits above it."""

    def importance_noise(self, k: int, n_images: int, device: torch.device) -> tuple[torch.Tensor, ...]: ...

    def prior_log_density(self) -> Callable[[torch.Tensor], torch.Tensor]: ...

    def log_weights(self, x: torch.Tensor, noise: Sequence[torch.Tensor], log_prior: Callable) -> torch.Tensor: ...


@torch.no_grad()
def iw_log_likelihood(model: ImportanceSampled, x: torch.Tensor, k: int, max_decodes: int = 10_000) -> torch.Tensor:
    """log p(x) ≈ log (1/k) Σ_i p(x, z_i) / q(z_i | x) with z_i ~ q(z | x), per image.

    The IWAE bound: a lower bound on log p(x) that rises towards it as ``k`` grows (k = 1 is
    the ELBO). The decoder's memory is what limits a forward pass, so each pass decodes at most
    ``max_decodes`` images (images x samples): memory does not grow with ``k`` or ``len(x)``.
    All k·B noise draws are made first (``model.importance_noise``: k·B·D numbers, small beside the
    decodes), so the estimate does not depend on the budget; the model weighs each block of them
    (``model.log_weights``: one stochastic layer or two, with the model's prior). The log-sum-exp over
    the k weights runs in float64.

    Args:
        model: a VAE (its encoder, decoder, likelihood and prior), or a hierarchical one.
        x: images ``(B, C, H, W)``.
        k: importance samples per image.
        max_decodes: images decoded per forward pass; below ``len(x)`` the images go a few at a time.

    Returns:
        ``(B,)`` float64, nats per image; -log p(x) is the NLL.
    """
    noise = model.importance_noise(k, len(x), x.device)  # each (k, B, ...)
    images = max(1, min(len(x), max_decodes))  # per forward pass
    samples = max(1, max_decodes // images)
    log_prior = model.prior_log_density()  # the VampPrior's pseudo-inputs encoded once for every sample
    log_weights = torch.empty(k, len(x), dtype=torch.float64, device=x.device)  # (k, B)
    for i in range(0, len(x), images):
        for s in range(0, k, samples):
            block = [eps[s : s + samples, i : i + images] for eps in noise]  # (n, b, ...) each
            n, b = block[0].shape[:2]
            log_weights[s : s + n, i : i + b] = model.log_weights(x[i : i + b], block, log_prior)
    return log_mean_exp(log_weights)  # (B,)


def in_pixel_units(log_px: torch.Tensor, n_pixels: int, std: float) -> torch.Tensor:
    """log p(x) of standardized pixels x' = (x - mean) / std, as the density of the [0, 1] pixels x.

    Change of variables: p(x) = p(x') |dx'/dx| = p(x') / std per pixel, so
    log p(x) = log p(x') - D ln(std) (NLL_pixels = NLL_standardized + D ln(std); for MNIST's
    std (0.3081) and 784 pixels the NLL drops by about 923 nats). Only in pixel units do likelihoods of
    models trained with and without ``data.normalize`` compare.

    Args:
        log_px: log-likelihoods of standardized images, any shape.
        n_pixels: D, the pixels of one image.
        std: the deviation the pixels were divided by.
    """
    return log_px - n_pixels * math.log(std)
