"""A VAE with two stochastic layers (Burda, Grosse & Salakhutdinov, 2016, the two-layer architecture)."""

from collections.abc import Callable, Sequence

import torch

from vae.losses import log_normal_diag, negative_elbo
from vae.models.vae import VAE
from vae.nets import MLP


class HVAE(VAE):
    """q(z1 | x) q(z2 | z1) and p(z2) p(z1 | z2) p(x | z1), every conditional a diagonal Gaussian but p(x|z1).

    The backbone's encoder gives q(z1 | x) and its decoder p(x | z1) (Burda et al.: 784-200-200-100 and
    back, tanh); two MLPs link the layers, q(z2 | z1) and p(z1 | z2) (100-100-100-50 and back). z, of
    ``latent_dim`` dims, is the top layer z2: the prior (N(0, I) or the VampPrior), prior samples and the
    latent pictures are of it, and :meth:`encode` gives q(z2 | x) along the first layer's mean. The KL
    of both layers, log q(z1|x) + log q(z2|z1) - log p(z1|z2) - log p(z2), is estimated from the samples
    of z1 and z2 (no closed form exists), so there is no KL per dimension.

    With ``prior="vamp"`` the top prior is p(z2) = (1/K) sum_k q(z2 | mu1(u_k)), the top posterior at the
    first-layer mean of each pseudo-input u_k: a mixture of Gaussians. Tomczak & Welling's HVAE takes
    q(z2 | x) from x directly and conditions q(z1 | x, z2) and p(x | z1, z2) on both layers; this model
    keeps Burda et al.'s chain, x -> z1 -> z2 and back.

    Args:
        latent_dim: size of the top layer z2.
        z1_dim: size of the lower layer z1.
        link_hidden_dims: hidden sizes of the MLP from z1 to z2 (mirrored from z2 to z1).
        link_activation: the activation of those MLPs.
        **options: as for ``VAE`` (``mc_samples``, ``beta``, the prior, the backbones, ...).
    """

    kl_in_closed_form = False

    def __init__(
        self,
        latent_dim: int = 50,
        z1_dim: int = 100,
        link_hidden_dims: Sequence[int] = (100, 100),
        link_activation: str = "tanh",
        **options,
    ) -> None:
        super().__init__(latent_dim=latent_dim, encoder_out_dim=2 * z1_dim, decoder_in_dim=z1_dim, **options)
        self.z1_dim = z1_dim
        self.up = MLP(z1_dim, 2 * latent_dim, link_hidden_dims, link_activation)  # q(z2 | z1)
        self.down = MLP(latent_dim, 2 * z1_dim, list(reversed(link_hidden_dims)), link_activation)  # p(z1 | z2)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z2 | z1) at z1 = E[z1 | x]: ``mu`` and ``logvar`` of the top layer, each ``(B, latent_dim)``."""
        mu1 = self.encoder(x).chunk(2, dim=1)[0]
        mu, logvar = self.up(mu1).chunk(2, dim=1)
        return mu, logvar

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """Mean image of p(x | z1) at z1 = E[z1 | z2], ``(B, C, H, W)``."""
        return self.likelihood.mean(self.decoder(self.down(z).chunk(2, dim=-1)[0]))

    def log_joint(
        self, x: torch.Tensor, eps1: torch.Tensor, eps2: torch.Tensor, log_prior: Callable, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(x | z1) and log p(z1, z2) - log q(z1, z2 | x) of the samples z1 = mu1 + sigma1 * eps1 ``(n, b, D1)``,
        z2 = mu2 + sigma2 * eps2 ``(n, b, D2)`` for the ``b`` images ``x``: ``(n, b)`` each, the densities in
        ``dtype`` (float64 for the likelihood estimate)."""
        mu1, logvar1 = (t.to(dtype) for t in self.encoder(x).chunk(2, dim=1))  # (b, D1) each
        z1 = mu1 + torch.exp(0.5 * logvar1) * eps1.to(dtype)  # (n, b, D1)
        mu2, logvar2 = (t.to(dtype) for t in self.up(z1.to(x.dtype)).chunk(2, dim=-1))  # (n, b, D2) each
        z2 = mu2 + torch.exp(0.5 * logvar2) * eps2.to(dtype)
        p_mu1, p_logvar1 = (t.to(dtype) for t in self.down(z2.to(x.dtype)).chunk(2, dim=-1))
        log_ratio = log_normal_diag(z1, p_mu1, p_logvar1) + log_prior(z2)
        log_ratio = log_ratio - log_normal_diag(z1, mu1, logvar1) - log_normal_diag(z2, mu2, logvar2)
        return self.log_likelihood(x, z1).to(dtype), log_ratio

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        shape, device = (self.hparams.mc_samples, len(x)), x.device
        eps1, eps2 = (
            torch.randn(*shape, self.z1_dim, device=device),
            torch.randn(*shape, self.latent_dim, device=device),
        )
        log_lik, log_ratio = self.log_joint(x, eps1, eps2, self.prior_log_density(), torch.float32)  # (L, B) each
        return negative_elbo(-log_lik.mean(0), -log_ratio.mean(0), self.kl_weight())

    def importance_noise(self, k: int, n_images: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """``(eps1, eps2)``: ``(k, B, D1)`` and ``(k, B, D2)``, the first drawn as a one-layer VAE's."""
        return torch.randn(k, n_images, self.z1_dim, device=device), torch.randn(
            k, n_images, self.latent_dim, device=device
        )

    def log_weights(self, x: torch.Tensor, noise: Sequence[torch.Tensor], log_prior: Callable) -> torch.Tensor:
        log_lik, log_ratio = self.log_joint(x, *noise, log_prior, torch.float64)
        return log_lik + log_ratio  # (n, b)
