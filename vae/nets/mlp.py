"""Fully connected encoder and decoder (784-400-z / z-400-784 by default)."""

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from vae.nets.activations import make_activation


def _mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers through ``sizes`` with ``activation`` between them, none after the last."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(make_activation(activation))
    return nn.Sequential(*layers)


class MLP(nn.Module):
    """Maps vectors ``(..., in_dim)`` to ``(..., out_dim)`` through ``hidden_dims``: the links between the
    stochastic layers of a hierarchical model.

    Args:
        in_dim, out_dim: sizes of the input and the output.
        hidden_dims: hidden layer sizes, from the input side.
        activation: name of the activation between layers.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dims: Sequence[int] = (), activation: str = "tanh") -> None:
        super().__init__()
        self.net = _mlp([in_dim, *hidden_dims, out_dim], activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPEncoder(nn.Module):
    """Flattens an image and maps it to ``out_dim`` numbers.

    The model decides what those numbers mean: ``2 * latent_dim`` for a VAE (mean and
    log-variance), ``latent_dim`` for an auto-encoder (the code itself).

    Args:
        in_shape: image shape ``(C, H, W)``.
        out_dim: size of the output vector.
        hidden_dims: hidden layer sizes, from the image side.
        activation: name of the activation between layers (see ``vae.nets.activations``).
    """

    def __init__(
        self, in_shape: Sequence[int], out_dim: int, hidden_dims: Sequence[int] = (400,), activation: str = "relu"
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), _mlp([math.prod(in_shape), *hidden_dims, out_dim], activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, out_dim)


class MLPDecoder(nn.Module):
    """Maps a latent vector to an image of raw outputs (logits or means; no final activation).

    Args:
        latent_dim: size of z.
        out_shape: image shape ``(C, H, W)``.
        hidden_dims: hidden layer sizes listed from the image side, as for the encoder;
            the decoder mirrors them (z-400-784 for ``[400]``).
        activation: name of the activation between layers.
    """

    def __init__(
        self, latent_dim: int, out_shape: Sequence[int], hidden_dims: Sequence[int] = (400,), activation: str = "relu"
    ) -> None:
        super().__init__()
        sizes = [latent_dim, *reversed(list(hidden_dims)), math.prod(out_shape)]
        self.net = nn.Sequential(_mlp(sizes, activation), nn.Unflatten(1, tuple(out_shape)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, C, H, W)

    @torch.no_grad()
    def set_output_bias(self, mean: torch.Tensor, output_of: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Sets the last layer's bias, one per pixel, to the output ``output_of`` gives for the image ``mean``
        ``(C, H, W)``: with no other input, the decoder's mean image is then ``mean``."""
        last = self.net[0][-1]  # the last Linear of the MLP
        last.bias.copy_(output_of(mean).flatten())
