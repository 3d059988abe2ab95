"""Backbone output shapes for several latent dims and image sizes, both architectures."""

from copy import deepcopy

import pytest
import torch

from vae.nets import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from vae.nets.activations import ACTIVATIONS, IN_PLACE, make_activation
from vae.nets.conv import feature_shape

SHAPES = [(1, 28, 28), (1, 32, 32), (3, 17, 23)]


@pytest.mark.parametrize("in_shape", SHAPES)
@pytest.mark.parametrize("latent_dim", [1, 2, 20])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_encoder_and_decoder_shapes(arch, latent_dim, in_shape):
    encoder_cls, decoder_cls = (MLPEncoder, MLPDecoder) if arch == "mlp" else (ConvEncoder, ConvDecoder)
    encoder = encoder_cls(in_shape=in_shape, out_dim=2 * latent_dim)
    decoder = decoder_cls(latent_dim=latent_dim, out_shape=in_shape)
    x = torch.rand(5, *in_shape)
    assert encoder(x).shape == (5, 2 * latent_dim)
    assert decoder(torch.randn(5, latent_dim)).shape == (5, *in_shape)


@pytest.mark.parametrize("strides", [(1, 2, 2, 1), (1, 2, 2, 2), (2, 2, 2, 2), (1, 1, 1, 1)])
@pytest.mark.parametrize("kernel_size", [3, 4, 5])
def test_conv_decoder_matches_any_image_size(strides, kernel_size):
    for in_shape in SHAPES:
        decoder = ConvDecoder(latent_dim=3, out_shape=in_shape, strides=strides, kernel_size=kernel_size)
        assert decoder(torch.randn(2, 3)).shape == (2, *in_shape)


def test_conv_feature_shape_is_derived_from_the_strides():
    assert feature_shape((1, 28, 28), [32, 64, 64, 64], 3, [1, 2, 2, 1]) == (64, 7, 7)
    assert feature_shape((1, 32, 32), [32, 64, 64, 64], 3, [1, 2, 2, 2]) == (64, 4, 4)
    encoder = ConvEncoder((1, 28, 28), out_dim=10)
    assert encoder.net[-1].in_features == 64 * 7 * 7


def test_mlp_defaults_are_the_reference_784_400_z():
    encoder, decoder = MLPEncoder((1, 28, 28), out_dim=40), MLPDecoder(20, (1, 28, 28))
    linear = [m for m in [*encoder.modules(), *decoder.modules()] if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(784, 400), (400, 40), (20, 400), (400, 784)]


def test_decoder_mirrors_several_hidden_layers():
    decoder = MLPDecoder(8, (1, 28, 28), hidden_dims=[512, 128])
    linear = [m for m in decoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(8, 128), (128, 512), (512, 784)]


def test_decoders_output_raw_values_without_a_final_squashing():
    torch.manual_seed(0)
    for decoder in (MLPDecoder(4, (1, 28, 28)), ConvDecoder(4, (1, 28, 28))):
        out = decoder(torch.randn(64, 4) * 10)
        # both signs and beyond 1: no sigmoid, tanh or ReLU at the end
        assert out.min() < 0 and out.max() > 1


def test_bad_backbone_settings_raise_clear_errors():
    with pytest.raises(ValueError, match="activation='swish'"):
        make_activation("swish")
    with pytest.raises(ValueError, match="same length"):
        ConvEncoder((1, 28, 28), 4, channels=[32, 64], strides=[1, 2, 2])
    with pytest.raises(ValueError, match="too small"):
        ConvEncoder((1, 8, 8), 4, channels=[8] * 4, strides=[2] * 4, kernel_size=4)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_every_activation_builds_both_backbones_and_trains_them(arch, activation):
    encoder_cls, decoder_cls = (MLPEncoder, MLPDecoder) if arch == "mlp" else (ConvEncoder, ConvDecoder)
    encoder = encoder_cls(in_shape=(1, 28, 28), out_dim=4, activation=activation)
    decoder = decoder_cls(latent_dim=2, out_shape=(1, 28, 28), activation=activation)
    assert any(isinstance(m, ACTIVATIONS[activation]) for m in [*encoder.modules(), *decoder.modules()])
    out = decoder(encoder(torch.rand(3, 1, 28, 28))[:, :2])
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in encoder.parameters())


@pytest.mark.parametrize("activation", IN_PLACE)
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_in_place_activations_change_no_number(arch, activation):
    """The backbones' activations overwrite their inputs: outputs and gradients equal those of the same nets
    with the activations out of place, and the images fed in are left as they were."""
    encoder_cls, decoder_cls = (MLPEncoder, MLPDecoder) if arch == "mlp" else (ConvEncoder, ConvDecoder)
    torch.manual_seed(0)
    nets = torch.nn.Sequential(
        encoder_cls(in_shape=(1, 28, 28), out_dim=4, activation=activation),
        decoder_cls(latent_dim=4, out_shape=(1, 28, 28), activation=activation),
    )
    copy = deepcopy(nets)
    switched = [m for m in copy.modules() if isinstance(m, ACTIVATIONS[activation])]
    assert switched and all(m.inplace for m in switched)
    for m in switched:
        m.inplace = False
    x = torch.randn(3, 1, 28, 28)
    x_before = x.clone()
    outputs = [net(x) for net in (nets, copy)]
    for out in outputs:
        out.square().mean().backward()
    assert torch.equal(x, x_before)
    assert torch.equal(*outputs)
    for p, q in zip(nets.parameters(), copy.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)
