"""Plain ``nn.Module`` encoders and decoders; they know nothing of Lightning, losses or logging."""

from vae.nets.conv import ConvDecoder, ConvEncoder
from vae.nets.mlp import MLP, MLPDecoder, MLPEncoder

__all__ = ["MLP", "ConvDecoder", "ConvEncoder", "MLPDecoder", "MLPEncoder"]
