"""Importance-weighted auto-encoder (Burda, Grosse & Salakhutdinov, 2016): the VAE's networks trained on
the k-sample importance-weighted bound."""

import torch

from vae.losses import kl_standard_normal, log_importance_weights, negative_iwae_bound
from vae.models.vae import VAE, reparameterize


class IWAE(VAE):
    """A VAE trained on the negative k-sample bound log (1/k) sum_s p(x, z_s) / q(z_s | x)
    (``vae.losses.negative_iwae_bound``), which rises towards log p(x) with k. Logs the bound
    (``iwae``, higher is better) beside the ELBO; k = 1 trains exactly the VAE.

    Args:
        k: importance samples of z per image.
        beta, kl_warmup_epochs: the weight of the KL and its ramp, as in ``VAE`` (1 and 0 train on the
            bound); below 1 the weights are tempered alike, log p(x|z) + beta (log p(z) - log q(z|x)),
            and the loss is that tempered bound.
        **options: as for ``VAE`` (the prior included: the weights use the model's prior).
    """

    scalar_terms = ("loss", "recon", "kl", "elbo", "iwae")

    def __init__(self, k: int = 5, **options) -> None:
        super().__init__(mc_samples=k, **options)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        k = self.hparams.k
        mu, logvar = self.encode(x)  # (B, D) each
        z = reparameterize(mu, logvar, k).view(k, *mu.shape)  # (k, B, D), the VAE's draws with mc_samples=k
        x_rep = x.expand(k, *x.shape).flatten(0, 1)  # (k * B, C, H, W)
        log_lik = -self.likelihood.nll(self.decoder(z.flatten(0, 1)), x_rep).view(k, -1)  # (k, B)
        log_prior = None if self.vamp is None else self.prior_log_density()(z.float())
        log_weights = log_importance_weights(log_lik, z, mu, logvar, log_prior)
        # the KL: in closed form under N(0, I); otherwise from the same samples, log q - log p = log p(x|z) - log w
        kl = kl_standard_normal(mu, logvar) if self.vamp is None else (log_lik - log_weights).mean(0)
        return negative_iwae_bound(log_lik, log_weights, kl, self.kl_weight())
