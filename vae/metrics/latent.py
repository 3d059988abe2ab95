"""How the latent space is used: active units, KL per dimension, class structure of the codes."""

import torch
from sklearn.metrics import silhouette_score
from sklearn.neighbors import KNeighborsClassifier

from vae.losses import kl_standard_normal


def active_units(codes: torch.Tensor, threshold: float = 0.01) -> tuple[int, torch.Tensor]:
    """Burda et al. (2016): a latent dimension is active when the variance, over the data, of its
    posterior mean exceeds ``threshold``.

    Args:
        codes: posterior means ``(N, D)`` of N images.

    Returns:
        The number of active dimensions and each dimension's variance ``(D,)``.
    """
    variance = codes.double().var(dim=0)
    return int((variance > threshold).sum()), variance


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean KL(q(z_d | x) || N(0, 1)) of each dimension over the images, ``(D,)`` nats."""
    return kl_standard_normal(mu, logvar).mean(dim=0)


def knn_accuracy(train_codes, train_labels, test_codes, test_labels, k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour vote in latent space: codes of training images label test images."""
    knn = KNeighborsClassifier(n_neighbors=k).fit(train_codes.numpy(), train_labels.numpy())
    return float(knn.score(test_codes.numpy(), test_labels.numpy()))


def silhouette(codes: torch.Tensor, labels: torch.Tensor, sample: int = 5000, seed: int = 0) -> float:
    """Mean silhouette of the classes in latent space, in [-1, 1] (higher: better separated),
    on a seeded sample of ``sample`` points (the exact score costs O(N^2))."""
    size = min(sample, len(codes))
    return float(silhouette_score(codes.numpy(), labels.numpy(), sample_size=size, random_state=seed))


def perturbed_codes(codes: torch.Tensor, sigma: float, noise: torch.Tensor, relative: bool) -> torch.Tensor:
    """``codes + sigma * noise``, with ``noise`` scaled by each dimension's spread over ``codes`` if
    ``relative``: then a model whose codes are 10 times wider gets 10 times the noise, so models
    with differently scaled latent spaces (an AE's codes are not held near N(0, I)) compare fairly.

    Args:
        codes: ``(N, D)`` codes of N images.
        noise: ``(N, D)`` standard normal draws.
    """
    scale = codes.std(dim=0) if relative else 1.0
    return codes + sigma * scale * noise
