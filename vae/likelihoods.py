"""Observation models p(x | z): how a decoder's raw output becomes a loss and an image.

The decoder never applies a sigmoid itself, so it cannot be applied twice: a likelihood
turns the raw output into ``mean`` (what is shown) and ``nll`` (what is trained).
"""

from typing import Protocol

import torch

from vae.losses import bernoulli_nll, gaussian_nll

MEAN_EPS = 1e-3  # means clamped to [eps, 1 - eps] before a logit


class Likelihood(Protocol):
    """What a model needs of an observation model."""

    name: str
    support: tuple[float, float] | None  # the pixel values it can model; None: any real value

    def nll(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x | decoder output), ``(B,)`` nats per image."""
        ...

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        """The mean image E[x | decoder output]."""
        ...

    def output_of(self, mean: torch.Tensor) -> torch.Tensor:
        """The decoder output whose ``mean`` is the given image (inverse of :meth:`mean`)."""
        ...

    def sample(self, mean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """An image drawn from p(x | z), given its mean image E[x | z]."""
        ...


class Bernoulli:
    """Independent Bernoulli pixels; the decoder outputs logits. Targets must lie in [0, 1]."""

    name = "bernoulli"
    support = (0.0, 1.0)

    def nll(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return bernoulli_nll(output, x)

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(output)

    def output_of(self, mean: torch.Tensor) -> torch.Tensor:
        return torch.logit(mean, eps=MEAN_EPS)  # pixels that are always 0 get a finite logit, about -6.9

    def sample(self, mean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(mean, generator=generator)

    def __repr__(self) -> str:
        return "Bernoulli()"


class Gaussian:
    """Fixed-variance Gaussian pixels ("MSE" up to constants).

    Args:
        variance: sigma^2 of every pixel. 0.5 makes the loss the plain sum of squared errors
            plus a constant.
        sigmoid_mean: pass the decoder output through a sigmoid to get the mean (keeps it in
            [0, 1]); otherwise the output is the mean.
    """

    name = "gaussian"
    support = None

    def __init__(self, variance: float = 1.0, sigmoid_mean: bool = False) -> None:
        self.variance = variance
        self.sigmoid_mean = sigmoid_mean

    def nll(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return gaussian_nll(self.mean(output), x, self.variance)

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(output) if self.sigmoid_mean else output

    def output_of(self, mean: torch.Tensor) -> torch.Tensor:
        return torch.logit(mean, eps=MEAN_EPS) if self.sigmoid_mean else mean

    def sample(self, mean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + self.variance**0.5 * noise

    def __repr__(self) -> str:
        return f"Gaussian(variance={self.variance}, sigmoid_mean={self.sigmoid_mean})"
