"""The prior p(z): N(0, I), drawn from by every model by default (:class:`StandardNormalPrior`), and the
VampPrior (Tomczak & Welling, 2018), a mixture of the encoder's posteriors at learned pseudo-inputs."""

import torch
from torch import nn

PRIORS = ("standard", "vamp")  # model.prior: N(0, I), or the VampPrior
PSEUDO_INPUT_INITS = ("data", "random")  # model.pseudo_inputs_init


class StandardNormalPrior:
    """The codes of a model with ``latent_dim`` drawn from N(0, I): what a GAN's generator and an auto-encoder's
    random-latent samples take, and a VAE's prior unless it has the VampPrior (which overrides both)."""

    latent_dim: int

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes from the prior, ``(n, latent_dim)`` float on the CPU, drawn from ``generator``."""
        return torch.randn(n, self.latent_dim, generator=generator)

    def prior_name(self) -> str:
        """What :meth:`sample_prior` draws from, for reports."""
        return "N(0, I)"


class VampPrior(nn.Module):
    """K learnable pseudo-inputs u_k, images of the data's shape, for p(z) = (1/K) sum_k q(z | u_k).

    Holds the pseudo-inputs only: the model encodes them with its own encoder (the prior learns with
    it) and evaluates the mixture with ``vae.losses.log_normal_mixture``. They live in the space the
    data is served in (standardized pixels under ``data.normalize``) and are not clamped: the paper's
    hardtanh to [0, 1] stops the gradient of every pixel that starts at exactly 0 or 1, and most of a
    digit's do.

    Args:
        n_inputs: K, the number of pseudo-inputs (500 in the paper).
        img_shape: ``(C, H, W)`` of the images.
        init: ``"data"``: K training images, picked by a fixed seed, when training starts from scratch;
            ``"random"``: the paper's N(0.05, 0.01²) pixels.
    """

    def __init__(self, n_inputs: int, img_shape: tuple[int, ...], init: str = "data") -> None:
        super().__init__()
        self.init = init
        self.inputs = nn.Parameter(0.05 + 0.01 * torch.randn(n_inputs, *img_shape))  # (K, C, H, W)

    @torch.no_grad()
    def start_from(self, datamodule) -> None:
        """The pseudo-inputs a run starts from: training images, or the random pixels in the served space."""
        if self.init == "data":
            start = datamodule.training_images(len(self.inputs))
        else:
            stats = datamodule.stats
            start = self.inputs.cpu() if stats is None else (self.inputs.cpu() - stats[0]) / stats[1]
        self.inputs.copy_(start.view_as(self.inputs))
