"""Vanilla auto-encoder: the same backbones with a deterministic code and no KL term."""

import torch

from vae.losses import reconstruction_loss
from vae.models.base import LatentVariableModel


class AutoEncoder(LatentVariableModel):
    """Deterministic auto-encoder trained on the reconstruction term alone (nats per image).

    Args:
        latent_dim: size of the code.
        beta: ignored (an auto-encoder has no KL term); accepted so that one sweep over
            ``model.beta`` can cover VAEs and auto-encoders alike.
        **options: the options every model shares (backbones, likelihood, optimizer, ...): see
            ``LatentVariableModel``.
    """

    def __init__(self, latent_dim: int = 20, beta: float = 1.0, **options) -> None:
        super().__init__(latent_dim=latent_dim, encoder_out_dim=latent_dim, **options)  # the code itself

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, latent_dim)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return reconstruction_loss(self.likelihood.nll(self.decoder(self.encoder(x)), x))
