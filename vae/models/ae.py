"""Vanilla auto-encoder: the same backbones with a deterministic code and no KL term."""

from collections.abc import Callable, Sequence

import torch

from vae.likelihoods import Likelihood
from vae.losses import reconstruction_loss
from vae.models.base import FACTORIES, LatentVariableModel, ModuleFactory


class AutoEncoder(LatentVariableModel):
    """Deterministic auto-encoder trained on the reconstruction term alone (nats per image).

    Args:
        encoder, decoder, likelihood, img_shape, latent_dim, optimizer, scheduler, monitor, compile,
            channels_last, init_output_bias: as for ``VAE``.
        beta: ignored (an auto-encoder has no KL term); accepted so that one sweep over
            ``model.beta`` can cover VAEs and auto-encoders alike.
    """

    def __init__(
        self,
        encoder: ModuleFactory | None = None,
        decoder: ModuleFactory | None = None,
        likelihood: Likelihood | None = None,
        img_shape: Sequence[int] = (1, 28, 28),
        latent_dim: int = 20,
        beta: float = 1.0,
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
            encoder_out_dim=latent_dim,  # the code itself
            optimizer=optimizer,
            scheduler=scheduler,
            monitor=monitor,
            compile=compile,
            channels_last=channels_last,
            init_output_bias=init_output_bias,
        )
        self.save_hyperparameters(logger=False, ignore=FACTORIES)

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, latent_dim)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return reconstruction_loss(self.likelihood.nll(self.decoder(self.encoder(x)), x))
