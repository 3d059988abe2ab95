"""Variational auto-encoder (Kingma & Welling, 2014) with β weight, MC samples, KL warm-up and a choice of prior."""

from collections.abc import Callable, Sequence
from functools import partial

import torch

from vae.losses import (
    kl_standard_normal,
    log_importance_weights,
    log_normal_diag,
    log_normal_mixture,
    log_standard_normal,
    negative_elbo,
)
from vae.models.base import LatentVariableModel, in_batches
from vae.priors import VampPrior


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, n_samples: int = 1) -> torch.Tensor:
    """Draws z = mu + sigma * eps with eps ~ N(0, I), differentiable in mu and logvar.

    Returns:
        ``(n_samples * B, D)``, sample-major: rows ``s * B .. (s + 1) * B - 1`` are sample ``s``.
    """
    eps = torch.randn((n_samples, *mu.shape), device=mu.device, dtype=mu.dtype)  # (L, B, D)
    return (mu + torch.exp(0.5 * logvar) * eps).flatten(0, 1)


class VAE(LatentVariableModel):
    """Gaussian-posterior VAE trained on the β-weighted negative ELBO (nats per image).

    Args:
        latent_dim: size of z.
        beta: weight of the KL term (β-VAE); 1 trains on the true ELBO.
        mc_samples: L, Monte-Carlo samples of z per image; the reconstruction term is their mean.
        kl_warmup_epochs: ramp the KL weight linearly from 0 to ``beta`` over this many
            training epochs (fractions allowed; 0 disables). Validation and test always use ``beta``.
        prior: ``"standard"``, N(0, I), with the KL in closed form (and per latent dimension); or
            ``"vamp"``, the VampPrior (``vae.priors.VampPrior``), with the KL estimated from the same
            samples of z as the reconstruction, log q(z|x) - log p(z).
        pseudo_inputs: K, the VampPrior's pseudo-inputs.
        pseudo_inputs_init: how they start: ``"data"`` (training images) or ``"random"``.
        **options: the options every model shares (backbones, likelihood, optimizer, ...): see
            ``LatentVariableModel``.
    """

    scalar_terms = ("loss", "recon", "kl", "elbo")
    monitors = ("val/loss", "val/recon", "val/kl")  # not val/elbo: higher is better
    kl_in_closed_form = True  # under N(0, I), per latent dimension

    def __init__(
        self,
        latent_dim: int = 20,
        beta: float = 1.0,
        mc_samples: int = 1,
        kl_warmup_epochs: float = 0.0,
        prior: str = "standard",
        pseudo_inputs: int = 500,
        pseudo_inputs_init: str = "data",
        **options,
    ) -> None:
        # a mixture prior's KL does not split by dimension, nor a hierarchical model's
        self.logs_kl_per_dim = self.kl_in_closed_form and prior == "standard"
        options.setdefault("encoder_out_dim", 2 * latent_dim)  # mu and logvar
        super().__init__(latent_dim=latent_dim, **options)
        self.vamp = VampPrior(pseudo_inputs, self.img_shape, pseudo_inputs_init) if prior == "vamp" else None

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z | x): ``mu`` and ``logvar``, each ``(B, latent_dim)``."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)[0]

    # --- the prior -----------------------------------------------------------------------------
    def prior_log_density(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """log p(z) as a function of ``(..., D)`` codes, returning ``(...)``: the VampPrior's pseudo-inputs
        are encoded once, here, for every code it is then given (differentiably: they train with it)."""
        if self.vamp is None:
            return log_standard_normal
        inputs = self.vamp.inputs
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        mu, logvar = self.encode(inputs)  # (K, D) each
        return partial(log_normal_mixture, mu=mu.float(), logvar=logvar.float())

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes from the model's prior, ``(n, latent_dim)`` float on the CPU; from the VampPrior, a
        pseudo-input picked uniformly, then z ~ q(z | u) (the same draws of ``generator``, the same codes
        for the same weights)."""
        eps = torch.randn(n, self.latent_dim, generator=generator)
        if self.vamp is None:
            return eps
        component = torch.randint(len(self.vamp.inputs), (n,), generator=generator)
        mu, logvar = in_batches(self, self.encode_posterior, self.vamp.inputs.detach(), 1000).chunk(2, dim=1)
        return mu[component] + torch.exp(0.5 * logvar[component]) * eps

    def encode_posterior(self, x: torch.Tensor) -> torch.Tensor:
        """``mu`` and ``logvar`` side by side, ``(B, 2 * latent_dim)``, for :func:`in_batches`."""
        return torch.cat(self.encode(x), dim=1)

    def prior_name(self) -> str:
        if self.vamp is None:
            return "N(0, I)"
        return f"the VampPrior ({len(self.vamp.inputs)} pseudo-inputs)"

    def kl_divergence(self, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || p(z)) of each image: in closed form per dimension under N(0, I), ``(B, D)``; under
        the VampPrior its estimate from the samples ``z`` ``(L, B, D)``, the mean of log q(z|x) - log p(z), ``(B,)``."""
        if self.vamp is None:
            return kl_standard_normal(mu, logvar)
        z, mu, logvar = z.float(), mu.float(), logvar.float()
        return (log_normal_diag(z, mu, logvar) - self.prior_log_density()(z)).mean(0)

    # --- the importance-weighted estimate of log p(x) (vae.metrics.iw_log_likelihood) -----------
    def importance_noise(self, k: int, n_images: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """The standard-normal draws of k samples of z for each of ``n_images`` images: ``((k, B, D),)``,
        the IWAE's draws, in the same order."""
        return (torch.randn(k, n_images, self.latent_dim, device=device),)

    def log_weights(
        self, x: torch.Tensor, noise: Sequence[torch.Tensor], log_prior: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """log p(x, z) - log q(z | x) of the samples z = mu + sigma * eps, ``noise`` = ``(eps,)`` ``(n, b, D)``
        for the ``b`` images ``x``: ``(n, b)`` float64. ``log_prior``: :meth:`prior_log_density`."""
        (eps,) = noise
        mu, logvar = (t.float() for t in self.encode(x))  # (b, D) each
        z = mu + torch.exp(0.5 * logvar) * eps  # (n, b, D)
        log_lik = self.log_likelihood(x, z)
        return log_importance_weights(log_lik.double(), z, mu, logvar, log_prior(z.double()))

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) of ``n`` samples of the code of each of the ``b`` images: ``z`` ``(n, b, ...)``, ``(n, b)``."""
        n, b = z.shape[:2]
        x_rep = x.expand(n, *x.shape).flatten(0, 1)  # (n * b, C, H, W)
        return -self.likelihood.nll(self.decoder(z.flatten(0, 1).to(x.dtype)), x_rep).view(n, b)

    # --- training ------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if stage == "fit" and self.vamp is not None:  # a resumed run then loads the checkpoint's
            self.vamp.start_from(self.trainer.datamodule)
        super().setup(stage)

    def kl_weight(self) -> float:
        """β, ramped up linearly during the first ``kl_warmup_epochs`` of training."""
        beta, warmup = self.hparams.beta, self.hparams.kl_warmup_epochs
        if warmup <= 0 or not self.training or self._trainer is None:
            return beta
        # global_step counts optimizer steps; with gradient accumulation each takes several batches
        batches_done = self.trainer.global_step * self.trainer.accumulate_grad_batches
        epochs_done = batches_done / max(1, self.trainer.num_training_batches)
        return beta * min(1.0, epochs_done / warmup)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        n_samples = self.hparams.mc_samples
        mu, logvar = self.encode(x)  # (B, D) each
        z = reparameterize(mu, logvar, n_samples)  # (L * B, D)
        x_rep = x.expand(n_samples, *x.shape).flatten(0, 1)  # (L * B, C, H, W)
        recon = self.likelihood.nll(self.decoder(z), x_rep).view(n_samples, -1).mean(0)  # (B,)
        kl = self.kl_divergence(z.view(n_samples, *mu.shape), mu, logvar)
        return negative_elbo(recon, kl, self.kl_weight())

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        terms = super().training_step(batch, batch_idx)
        if self.hparams.kl_warmup_epochs > 0 and self.log_training_values:  # shows the ramp in TensorBoard
            # a Python float, and only on the steps that reach the logger: no copy to the device per step
            self.log("train/kl_weight", self.kl_weight(), on_step=True, on_epoch=False)
        return terms
