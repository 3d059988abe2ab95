"""Strided convolutional encoder and the transposed-convolution decoder that mirrors it.

The defaults (channels 32-64-64-64, 3x3 kernels, strides 1-2-2-1, LeakyReLU) take a 28x28
image to a 64x7x7 feature map. Every size is derived from the configuration, so any latent
dim, channel list and image size work; the decoder crops or pads its output to the image size.
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vae.nets.activations import make_activation


def feature_shape(
    in_shape: Sequence[int], channels: Sequence[int], kernel_size: int, strides: Sequence[int]
) -> tuple[int, int, int]:
    """Shape ``(C, H, W)`` of the encoder's last feature map for an image of ``in_shape``.

    Raises:
        ValueError: if the lists differ in length or the image is too small for the strides.
    """
    if len(channels) != len(strides):
        raise ValueError(f"channels={list(channels)} and strides={list(strides)} must have the same length")
    _, h, w = in_shape
    padding = (kernel_size - 1) // 2
    for stride in strides:
        # nn.Conv2d's output size formula
        h = (h + 2 * padding - kernel_size) // stride + 1
        w = (w + 2 * padding - kernel_size) // stride + 1
        if h < 1 or w < 1:
            raise ValueError(
                f"image of {tuple(in_shape[1:])} is too small for strides={list(strides)} "
                f"with kernel_size={kernel_size}"
            )
    return channels[-1], h, w


class ConvEncoder(nn.Module):
    """Conv layers (one per entry of ``channels``), then a linear map to ``out_dim`` numbers.

    Args:
        in_shape: image shape ``(C, H, W)``.
        out_dim: size of the output vector (``2 * latent_dim`` for a VAE, ``latent_dim`` for an AE).
        channels: output channels of each conv layer.
        strides: stride of each conv layer.
        kernel_size: square kernel size of every layer; padding ``(k - 1) // 2`` keeps the size
            at stride 1 for odd kernels.
        activation: name of the activation after each conv layer.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        out_dim: int,
        channels: Sequence[int] = (32, 64, 64, 64),
        strides: Sequence[int] = (1, 2, 2, 1),
        kernel_size: int = 3,
        activation: str = "leaky_relu",
    ) -> None:
        super().__init__()
        c, h, w = feature_shape(in_shape, channels, kernel_size, strides)  # validates the lists first
        padding = (kernel_size - 1) // 2
        layers: list[nn.Module] = []
        for c_in, c_out, stride in zip([in_shape[0], *channels[:-1]], channels, strides, strict=True):
            layers += [nn.Conv2d(c_in, c_out, kernel_size, stride, padding), make_activation(activation)]
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, out_dim)


class ConvDecoder(nn.Module):
    """Linear map to the encoder's feature shape, then transposed convs mirroring the encoder.

    Takes the encoder's arguments (channels and strides in encoder order) and walks them
    backwards; the last layer outputs the image channels with no activation (raw logits or
    means). The output is center-cropped or zero-padded to ``out_shape``.

    Args:
        latent_dim: size of z.
        out_shape: image shape ``(C, H, W)``.
        channels, strides, kernel_size, activation: as for :class:`ConvEncoder`.
    """

    def __init__(
        self,
        latent_dim: int,
        out_shape: Sequence[int],
        channels: Sequence[int] = (32, 64, 64, 64),
        strides: Sequence[int] = (1, 2, 2, 1),
        kernel_size: int = 3,
        activation: str = "leaky_relu",
    ) -> None:
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.feature_shape = feature_shape(out_shape, channels, kernel_size, strides)
        padding = (kernel_size - 1) // 2
        ins = list(reversed(channels))  # (c3, c2, c1, c0) for the default
        outs = [*ins[1:], out_shape[0]]  # (c2, c1, c0, C_img)
        layers: list[nn.Module] = []
        for i, (c_in, c_out, stride) in enumerate(zip(ins, outs, reversed(list(strides)), strict=True)):
            # output_padding = stride - 1 makes each layer at least undo its encoder twin's
            # downsampling; the final crop removes what is left over (e.g. 32 -> 28).
            layers.append(nn.ConvTranspose2d(c_in, c_out, kernel_size, stride, padding, output_padding=stride - 1))
            if i < len(ins) - 1:
                layers.append(make_activation(activation))
        self.fc = nn.Linear(latent_dim, self.feature_shape[0] * self.feature_shape[1] * self.feature_shape[2])
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, *self.feature_shape)  # (B, C_f, H_f, W_f)
        x = self.net(h)  # (B, C, H', W') with H' >= H, W' >= W
        dh, dw = self.out_shape[1] - x.shape[-2], self.out_shape[2] - x.shape[-1]
        # negative padding crops: one call centers the output whichever way it is off
        return F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))  # (B, C, H, W)

    @torch.no_grad()
    def set_output_bias(self, mean: torch.Tensor, output_of: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Sets the last layer's bias as ``MLPDecoder.set_output_bias`` does, as far as a conv can: its bias is
        one per channel, shared by every pixel, so each channel gets the output of its mean pixel."""
        self.net[-1].bias.copy_(output_of(mean.flatten(1).mean(1)))
