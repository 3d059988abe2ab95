"""The reference digit classifier: the image size it takes, and its training with the project's data module."""

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from vae.data.tensors import resize
from vae.nets.classifier import DigitClassifier

CLASSIFIER_SIZE = 28  # the reference classifier's images are MNIST's own 28x28


def at_classifier_size(images: torch.Tensor) -> torch.Tensor:
    """``images`` ``(B, C, H, W)`` resized to the reference classifier's 28x28 (bilinear, antialiased)."""
    return resize(images, CLASSIFIER_SIZE)


class ClassifierModule(L.LightningModule):
    """Cross-entropy training of :class:`DigitClassifier`; logs ``<stage>/loss`` and ``<stage>/accuracy``.

    Args:
        lr: Adam learning rate.
        dropout: dropout rate of the network.
    """

    def __init__(self, lr: float = 1e-3, dropout: float = 0.25) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.net = DigitClassifier(dropout)
        # one metric object per stage (a ModuleDict cannot have a "train" key: it is nn.Module.train)
        # accuracy: the fraction of images classified right (micro average)
        self.train_accuracy, self.val_accuracy, self.test_accuracy = (
            MulticlassAccuracy(10, average="micro") for _ in range(3)
        )

    def _common_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        accuracy = getattr(self, f"{stage}_accuracy")
        accuracy(logits, y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        self.log(f"{stage}/accuracy", accuracy, on_step=False, on_epoch=True, prog_bar=stage != "train")
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
