"""The reference classifier's training: a LightningModule around :class:`ImageClassifier` (run by
``python -m vae.metrics.train_classifier``)."""

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from vae.nets.classifier import ImageClassifier


class ClassifierModule(L.LightningModule):
    """Cross-entropy training of :class:`ImageClassifier`; logs ``<stage>/loss`` and ``<stage>/accuracy``.

    Args:
        lr: Adam learning rate.
        num_classes: classes of the dataset.
        dropout: dropout rate of the network.
        batch_norm: batch normalization after each convolution.
        cosine_epochs: decay the learning rate to 0 along a cosine over this many epochs; 0 keeps it constant.
    """

    def __init__(
        self,
        lr: float = 1e-3,
        num_classes: int = 10,
        dropout: float = 0.25,
        batch_norm: bool = False,
        cosine_epochs: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.net = ImageClassifier(num_classes, dropout, batch_norm)
        # one metric object per stage (a ModuleDict cannot have a "train" key: it is nn.Module.train)
        # accuracy: the fraction of images classified right (micro average)
        self.train_accuracy, self.val_accuracy, self.test_accuracy = (
            MulticlassAccuracy(num_classes, average="micro") for _ in range(3)
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

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        if not self.hparams.cosine_epochs:
            return optimizer
        # one cosine decay to zero over the training: the last epochs settle the weights
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.hparams.cosine_epochs)
        return {"optimizer": optimizer, "lr_scheduler": schedule}
