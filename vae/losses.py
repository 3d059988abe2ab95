"""Loss terms as pure functions of tensors.

Convention for every number this project reports: each term is summed over pixels and over
latent dimensions, then averaged over the batch, so values are nats per image and comparable
with the literature (e.g. pytorch/examples' VAE reports ~105.6 nats at epoch 10).
"""

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | logits) under independent Bernoullis, per image.

    With grey-level targets in (0, 1) this is a cross-entropy, not the log-likelihood of
    a discrete dataset; binarize the data when the number must be a likelihood.

    Args:
        logits: decoder output, ``(B, C, H, W)``.
        x: targets in [0, 1], same shape.

    Returns:
        ``(B,)`` nats per image.
    """
    # float(): under bf16 autocast the sum over 784 pixels needs float32
    return F.binary_cross_entropy_with_logits(logits.float(), x.float(), reduction="none").flatten(1).sum(1)


def gaussian_nll(mean: torch.Tensor, x: torch.Tensor, variance: float) -> torch.Tensor:
    """-log N(x; mean, variance * I), per image, including the normalizing constant.

    Up to the constant ``0.5 * D * log(2 pi variance)`` this is ``SSE / (2 * variance)``.

    Returns:
        ``(B,)`` nats per image.
    """
    sq = (x.float() - mean.float()).pow(2).flatten(1)  # (B, D)
    return 0.5 * (sq.sum(1) / variance + sq.shape[1] * math.log(2 * math.pi * variance))


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per latent dimension, in closed form.

    Kingma & Welling (2014), Appendix B: ``-0.5 * (1 + logvar - mu^2 - exp(logvar))``.

    Returns:
        ``(B, D)``; sum over the last dim for the KL of each image.
    """
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def negative_elbo(recon: torch.Tensor, kl: torch.Tensor, beta: float = 1.0) -> dict[str, torch.Tensor]:
    """The β-weighted negative ELBO and its parts, in nats per image.

    Args:
        recon: ``(B,)`` reconstruction term, -E_q[log p(x|z)].
        kl: ``(B, D)`` KL of each latent dimension, or ``(B,)`` where the KL does not split by
            dimension (a Monte-Carlo estimate against a mixture prior).
        beta: weight of the KL term; 1 gives the true negative ELBO.

    Returns:
        ``loss`` (differentiable, recon + beta * KL, batch mean) and detached ``recon``,
        ``kl`` (unweighted), ``elbo`` (= -(recon + KL), whatever beta), and ``kl_per_dim`` ``(D,)``
        where ``kl`` has one.
    """
    per_image = kl.sum(1) if kl.dim() == 2 else kl  # (B,)
    terms = {
        "loss": (recon + beta * per_image).mean(),
        "recon": recon.detach().mean(),
        "kl": per_image.detach().mean(),
        "elbo": -(recon + per_image).detach().mean(),
    }
    if kl.dim() == 2:
        terms["kl_per_dim"] = kl.detach().mean(0)
    return terms


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension (broadcasting over the others)."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension: ``(..., D)`` to ``(...)``."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def log_normal_mixture(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, max_elements: int = 2**22
) -> torch.Tensor:
    """log (1/K) sum_k N(z; mu_k, diag(exp(logvar_k))): an equal-weight mixture of K diagonal Gaussians,
    such as the VampPrior's (Tomczak & Welling, 2018), by a log-sum-exp over the components.

    In float32 (training) each component's density is computed directly, which costs K x D numbers a
    point: expanding the square would cancel badly when a component is narrow. In float64 (the
    likelihood estimate, whose k=5000 samples an image make the direct way take hours) the square is
    expanded into two matrix products, 30-40 times as fast; float64 keeps its error near 1e-13 nats.
    Either way a block of z at a time, so that memory stays within ``max_elements`` numbers whatever the
    number of z.

    Args:
        z: ``(..., D)`` the points.
        mu, logvar: ``(K, D)`` the components' means and log-variances.

    Returns:
        ``(...)``, in the dtype of ``z``.
    """
    points = z.reshape(-1, z.shape[-1])  # (N, D)
    mu, logvar = mu.to(z.dtype), logvar.to(z.dtype)
    if z.dtype == torch.float64:
        precision = torch.exp(-logvar)  # (K, D)
        constant = (mu.pow(2) * precision + logvar + LOG_2PI).sum(-1)  # (K,)

        def log_densities(block: torch.Tensor) -> torch.Tensor:  # (n, D) -> (n, K)
            return -0.5 * (block.pow(2) @ precision.T - 2 * block @ (mu * precision).T + constant)

        rows = max(1, max_elements // len(mu))
    else:

        def log_densities(block: torch.Tensor) -> torch.Tensor:
            return log_normal_diag(block.unsqueeze(1), mu, logvar)

        rows = max(1, max_elements // mu.numel())
    log_k = math.log(len(mu))
    blocks = [torch.logsumexp(log_densities(block), dim=1) - log_k for block in points.split(rows)]  # (n,) each
    return torch.cat(blocks).view(z.shape[:-1])


def log_importance_weights(
    log_lik: torch.Tensor,
    z: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    log_prior: torch.Tensor | None = None,
) -> torch.Tensor:
    """log w = log p(x | z) + log p(z) - log q(z | x) of samples z ~ q(z | x) = N(mu, exp(logvar))
    (Burda, Grosse & Salakhutdinov, 2016). The one implementation of the weights, used by the IWAE's
    objective and by the likelihood estimate of ``vae.metrics``.

    Args:
        log_lik: ``(k, B)`` log p(x | z) of each sample.
        z: ``(k, B, D)`` the samples.
        mu, logvar: ``(B, D)`` the parameters of q(z | x).
        log_prior: ``(k, B)`` log p(z) of each sample; None is the standard normal prior N(0, I).

    Returns:
        ``(k, B)``, in the dtype of ``log_lik`` (float32 at least).
    """
    z, mu, logvar = z.to(log_lik.dtype), mu.to(log_lik.dtype), logvar.to(log_lik.dtype)
    log_prior = log_standard_normal(z) if log_prior is None else log_prior.to(log_lik.dtype)
    return log_lik + log_prior - log_normal_diag(z, mu, logvar)


def negative_iwae_bound(
    log_lik: torch.Tensor, log_weights: torch.Tensor, kl: torch.Tensor, beta: float = 1.0
) -> dict[str, torch.Tensor]:
    """The negative k-sample importance-weighted bound (IWAE, Burda et al. 2016), in nats per image.

    The bound is log (1/k) sum_s w_s. Its estimate here is written as the ELBO, with the KL in closed
    form as the VAE computes it, plus the gap log (1/k) sum_s w_s - (1/k) sum_s log w_s, which is
    >= 0 and exactly 0 at k = 1. The two parts' expectations, and those of their reparameterized
    gradients, sum to the bound's: at k = 1 the loss is the VAE's to the last bit.

    Args:
        log_lik: ``(k, B)`` log p(x | z_s).
        log_weights: ``(k, B)`` ``log_importance_weights`` of the same samples.
        kl: ``(B, D)`` the closed-form KL of each latent dimension, or ``(B,)`` its Monte-Carlo
            estimate from the same samples, (1/k) sum_s log q(z_s | x) - log p(z_s), where the prior
            has no closed form.
        beta: weight of the KL term, and of log p(z) - log q(z | x) in the weights (1: the bound; a KL
            warm-up ramps it).

    Returns:
        ``negative_elbo``'s terms, with ``loss`` less the batch's mean gap, and the detached ``iwae``
        (the bound's plain estimate, log (1/k) sum_s w_s, batch mean; higher is better).
    """
    terms = negative_elbo(-log_lik.mean(0), kl, beta)
    # Under beta < 1 the weights are tempered as the KL is, log p(x|z) + beta (log p(z) - log q(z|x)): the
    # loss is then the tempered bound. The gap of the untempered weights, unchecked by a full KL, would
    # reward an ever wider q(z|x) without limit.
    tempered = log_weights if beta == 1 else log_lik + beta * (log_weights - log_lik)
    terms["loss"] = terms["loss"] - (log_mean_exp(tempered) - tempered.mean(0)).mean()
    terms["iwae"] = log_mean_exp(log_weights).detach().mean()
    return terms


def log_mean_exp(log_weights: torch.Tensor) -> torch.Tensor:
    """log (1/k) sum_s exp(log_weights[s]), over the first dimension."""
    return torch.logsumexp(log_weights, dim=0) - math.log(len(log_weights))


def reconstruction_loss(recon: torch.Tensor) -> dict[str, torch.Tensor]:
    """An auto-encoder's loss: the reconstruction term alone, in nats per image.

    Args:
        recon: ``(B,)`` -log p(x | z) of each image.

    Returns:
        ``loss`` (differentiable, batch mean) and the detached ``recon``.
    """
    return {"loss": recon.mean(), "recon": recon.detach().mean()}


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """GAN discriminator loss: -log D(x) - log(1 - D(G(z))), nats per image, averaged over the batch.

    Args:
        real_logits, fake_logits: the discriminator's logits of "real", ``(B, 1)`` each.
        real_target: the label of real images; below 1 is one-sided label smoothing (e.g. 0.9).
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -log D(G(z)) (Goodfellow et al., 2014), averaged over the batch.

    Its gradient stays large while the discriminator rejects the samples, unlike log(1 - D(G(z))).
    """
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
