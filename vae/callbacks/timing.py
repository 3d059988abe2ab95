"""How fast training goes: seconds per training epoch and images per second, logged each epoch."""

import time

import lightning as L
import torch


class EpochTimer(L.Callback):
    """Times the training batches of each epoch, from its start to the end of its last batch
    (validation and epoch-end work left out), and logs ``perf/train_epoch_s`` and
    ``perf/images_per_s``. Each epoch's figures are also kept in :attr:`epochs`.

    On a GPU the clock is read after a device synchronization, at the start and after the last
    batch only, so the time covers the work the batches queued without slowing every step.
    """

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self._start = self._end = 0.0
        self._images = 0

    @staticmethod
    def _now(pl_module: L.LightningModule) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run resumed mid-epoch (from a checkpoint saved on SIGTERM) gets no on_train_epoch_start for
        # the epoch it continues: time the batches this process trains of it, from here
        self.on_train_epoch_start(trainer, pl_module)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._images = 0
        self._start = self._now(pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        self._images += len(batch[0])
        if batch_idx + 1 == trainer.num_training_batches:
            self._end = self._now(pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._images == 0:  # resuming from a checkpoint saved after validation, Lightning replays the
            return  # end of that epoch, which this process never trained: there is nothing to time
        end = self._end if self._end > self._start else self._now(pl_module)  # stopped before the last batch
        figures = {"train_epoch_s": end - self._start, "images": float(self._images)}
        figures["images_per_s"] = self._images / figures["train_epoch_s"]
        self.epochs.append(figures)
        pl_module.log("perf/train_epoch_s", figures["train_epoch_s"])
        pl_module.log("perf/images_per_s", figures["images_per_s"])
