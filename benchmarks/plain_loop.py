"""The floor: the default VAE trained by a plain PyTorch loop, as one writes it by hand, in a process of its own.

The framework's default model (MLP 784-400-20 with ReLU, Bernoulli likelihood, Adam lr 1e-3, batch 128) written
with ``torch.nn`` alone, trained on images held in one float tensor: a random permutation each epoch, one
indexed batch per step, pytorch/examples' loss, and nothing else (no data pipeline, logging, validation or
checkpoint). Only torch and torchvision are imported, as in a user's script. The time of each epoch (taken
inside the process; CUDA-synchronised) is printed as one JSON line at the end.

    python -m benchmarks.plain_loop --data-root <folder holding MNIST/raw/> --epochs 3
"""

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets

LATENT_DIM, HIDDEN, BATCH_SIZE, LR = 20, 400, 128, 1e-3
TRAIN_IMAGES = 55_000  # the framework's training split, so that both run the same steps an epoch


def mlp_vae(latent_dim: int = LATENT_DIM, hidden: int = HIDDEN) -> tuple[nn.Module, nn.Module]:
    """The framework's default encoder and decoder, layer for layer (tests/test_benchmarks.py compares them)."""
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim))
    decoder = nn.Sequential(
        nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, 784), nn.Unflatten(1, (1, 28, 28))
    )
    return encoder, decoder


def plain_step(
    encoder: nn.Module, decoder: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor
) -> torch.Tensor:
    """pytorch/examples' VAE step: BCE summed over pixels plus the closed-form KL, per image."""
    mu, logvar = encoder(x).chunk(2, dim=1)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    bce = F.binary_cross_entropy_with_logits(decoder(z), x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    loss = (bce + kld) / len(x)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def train(images: torch.Tensor, device: torch.device, epochs: int, batch_size: int = BATCH_SIZE) -> list[float]:
    """Seconds of each epoch of the plain loop over ``images`` ``(N, 1, 28, 28)`` in [0, 1] on ``device``."""
    encoder, decoder = (net.to(device) for net in mlp_vae())
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=LR)
    seconds = []
    for _ in range(epochs):
        start = now(device)
        for index in torch.randperm(len(images), device=device).split(batch_size):
            plain_step(encoder, decoder, optimizer, images[index])
        seconds.append(now(device) - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True, help="folder holding MNIST/raw/, extracted")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--images", type=int, default=TRAIN_IMAGES, help="training images (the first of the file)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    images = datasets.MNIST(args.data_root, train=True).data[: args.images]
    images = images.to(device).unsqueeze(1).float().div_(255)  # (N, 1, 28, 28)
    seconds = train(images, device, args.epochs, args.batch_size)
    print(json.dumps({"images": len(images), "epoch_s": seconds}))


if __name__ == "__main__":
    main()
