"""Importance-weighted auto-encoder (Burda, Grosse & Salakhutdinov, 2016): the VAE's networks trained on
the k-sample importance-weighted bound."""

from collections.abc import Callable, Sequence

import torch

from vae.likelihoods import Likelihood
from vae.losses import kl_standard_normal, log_importance_weights, negative_iwae_bound
from vae.models.base import ModuleFactory
from vae.models.vae import VAE, reparameterize


class IWAE(VAE):
    """A VAE trained on the negative k-sample bound log (1/k) sum_s p(x, z_s) / q(z_s | x)
    (``vae.losses.negative_iwae_bound``), which rises towards log p(x) with k. Logs the bound
    (``iwae``, higher is better) beside the ELBO; k = 1 trains exactly the VAE.

    Args:
        k: importance samples of z per image.
        encoder, decoder, likelihood, img_shape, latent_dim, optimizer, scheduler, monitor, compile,
            channels_last, init_output_bias: see ``VAE``.
        beta, kl_warmup_epochs: the weight of the closed-form KL and its ramp, as in ``VAE`` (1 and 0
            train on the bound); below 1 the weights are tempered alike, log p(x|z) + beta (log p(z) -
            log q(z|x)), and the loss is that tempered bound.
    """

    scalar_terms = ("loss", "recon", "kl", "elbo", "iwae")

    def __init__(
        self,
        encoder: ModuleFactory | None = None,
        decoder: ModuleFactory | None = None,
        likelihood: Likelihood | None = None,
        img_shape: Sequence[int] = (1, 28, 28),
        latent_dim: int = 20,
        k: int = 5,
        beta: float = 1.0,
        kl_warmup_epochs: float = 0.0,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        monitor: str = "val/loss",
        compile: bool = False,
        channels_last: bool = False,
        init_output_bias: bool = False,
    ) -> None:
        super().__init__(
            encoder=encoder,
            decoder=decoder,
            likelihood=likelihood,
            img_shape=img_shape,
            latent_dim=latent_dim,
            beta=beta,
            mc_samples=k,
            kl_warmup_epochs=kl_warmup_epochs,
            optimizer=optimizer,
            scheduler=scheduler,
            monitor=monitor,
            compile=compile,
            channels_last=channels_last,
            init_output_bias=init_output_bias,
        )

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        k = self.hparams.k
        mu, logvar = self.encode(x)  # (B, D) each
        z = reparameterize(mu, logvar, k)  # (k * B, D), the same draws as the VAE's with mc_samples=k
        x_rep = x.expand(k, *x.shape).flatten(0, 1)  # (k * B, C, H, W)
        log_lik = -self.likelihood.nll(self.decoder(z), x_rep).view(k, -1)  # (k, B)
        log_weights = log_importance_weights(log_lik, z.view(k, *mu.shape), mu, logvar)
        return negative_iwae_bound(log_lik, log_weights, kl_standard_normal(mu, logvar), self.kl_weight())
