"""Faults injected into real runs: the tests load these through the config (+callbacks.<name>)."""

import lightning as L
import torch


class PoisonWeights(L.Callback):
    """Sets every parameter of ``module`` (``encoder``, ``decoder``, ``generator``...) to NaN before training step
    ``step``, as a diverging run would."""

    def __init__(self, module: str, step: int) -> None:
        self.module, self.step = module, step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                for parameter in getattr(pl_module, self.module).parameters():
                    parameter.fill_(float("nan"))
