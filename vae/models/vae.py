"""Variational auto-encoder (Kingma & Welling, 2014) with β weight, MC samples and KL warm-up."""

from collections.abc import Callable, Sequence

import torch

from vae.likelihoods import Likelihood
from vae.losses import kl_standard_normal, negative_elbo
from vae.models.base import FACTORIES, LatentVariableModel, ModuleFactory


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
        encoder, decoder, likelihood, img_shape, optimizer, scheduler, monitor, compile, channels_last,
            init_output_bias: see ``LatentVariableModel``.
        latent_dim: size of z.
        beta: weight of the KL term (β-VAE); 1 trains on the true ELBO.
        mc_samples: L, Monte-Carlo samples of z per image; the reconstruction term is their mean.
        kl_warmup_epochs: ramp the KL weight linearly from 0 to ``beta`` over this many
            training epochs (fractions allowed; 0 disables). Validation and test always use ``beta``.
    """

    scalar_terms = ("loss", "recon", "kl", "elbo")
    monitors = ("val/loss", "val/recon", "val/kl")  # not val/elbo: higher is better
    logs_kl_per_dim = True

    def __init__(
        self,
        encoder: ModuleFactory | None = None,
        decoder: ModuleFactory | None = None,
        likelihood: Likelihood | None = None,
        img_shape: Sequence[int] = (1, 28, 28),
        latent_dim: int = 20,
        beta: float = 1.0,
        mc_samples: int = 1,
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
            encoder_out_dim=2 * latent_dim,  # mu and logvar
            optimizer=optimizer,
            scheduler=scheduler,
            monitor=monitor,
            compile=compile,
            channels_last=channels_last,
            init_output_bias=init_output_bias,
        )
        self.save_hyperparameters(logger=False, ignore=FACTORIES)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z | x): ``mu`` and ``logvar``, each ``(B, latent_dim)``."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)[0]

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
        return negative_elbo(recon, kl_standard_normal(mu, logvar), self.kl_weight())

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        terms = super().training_step(batch, batch_idx)
        if self.hparams.kl_warmup_epochs > 0 and self.log_training_values:  # shows the ramp in TensorBoard
            # a Python float, and only on the steps that reach the logger: no copy to the device per step
            self.log("train/kl_weight", self.kl_weight(), on_step=True, on_epoch=False)
        return terms
