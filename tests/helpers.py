"""Faults injected into real runs: the tests load these through the config (+callbacks.<name>)."""

import os
import signal

import lightning as L
import torch


class PoisonWeights(L.Callback):
    """Sets every parameter of ``module`` (``encoder``, ``decoder``, ``generator``...) to NaN before training step
    ``step``, as a diverging run would; on process ``rank`` alone if one is given (DDP)."""

    def __init__(self, module: str, step: int, rank: int | None = None) -> None:
        self.module, self.step, self.rank = module, step, rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step and self.rank in (None, trainer.global_rank):
            with torch.no_grad():
                for parameter in getattr(pl_module, self.module).parameters():
                    parameter.fill_(float("nan"))


class KillAtStep(L.Callback):
    """SIGKILLs the process after training step ``step`` of a fresh run (not of one resumed from a
    checkpoint), as a machine that dies would: nothing after that step is saved."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.ckpt_path is None and trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)
