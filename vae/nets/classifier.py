"""A small conv net that classifies MNIST digits: the project's reference for sample quality."""

import torch
from torch import nn


class DigitClassifier(nn.Module):
    """conv 32 - pool - conv 64 - pool - dense 128 - dense 10; 421,642 parameters (1.7 MB in float32).

    :meth:`features` gives the 128 activations before the last layer, the space in which
    Fréchet distances are measured; :meth:`forward` gives the 10 logits.

    Args:
        dropout: dropout rate before the dense layers (training only).
    """

    num_features = 128  # read by torchmetrics' FrechetInceptionDistance

    def __init__(self, dropout: float = 0.25) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 64, 7, 7)
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(64 * 7 * 7, self.num_features),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, 10))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))  # (B, 10) logits
