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


class SpoilValidation(L.Callback):
    """Scales ``module``'s parameters by ``factor`` during the validation of epoch ``epoch`` only: that epoch
    scores far worse, and its checkpoint (written after validation) holds the weights it trained."""

    def __init__(self, epoch: int, module: str = "decoder", factor: float = 100.0) -> None:
        self.epoch, self.module, self.factor = epoch, module, factor
        self._trained: list[torch.Tensor] = []

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch and not trainer.sanity_checking:
            parameters = list(getattr(pl_module, self.module).parameters())
            self._trained = [p.detach().clone() for p in parameters]
            with torch.no_grad():
                for parameter in parameters:
                    parameter.mul_(self.factor)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self._trained:
            with torch.no_grad():
                for parameter, trained in zip(getattr(pl_module, self.module).parameters(), self._trained, strict=True):
                    parameter.copy_(trained)
            self._trained = []


class KillAtStep(L.Callback):
    """SIGKILLs the process after training step ``step`` of a fresh run (not of one resumed from a
    checkpoint), as a machine that dies would: nothing after that step is saved."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.ckpt_path is None and trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class ErrorOnSync(L.Callback):
    """Makes any host-device synchronization inside a training step an error, from step ``from_step`` on
    (the first steps may sync while kernels and the allocator warm up); CUDA only."""

    def __init__(self, from_step: int = 2) -> None:
        self.from_step = from_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step >= self.from_step:
            torch.cuda.set_sync_debug_mode("error")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        torch.cuda.set_sync_debug_mode("default")


class SigtermFromEnv(L.Callback):
    """SIGTERM to this very process where ``$VAE_TEST_SIGTERM`` says, as a scheduler would send it at that
    moment: ``train:<step>`` after that training step, ``validation:<epoch>`` during that epoch's
    validation, ``test`` during the test. Read from the environment, so the run's settings are the same
    whether it is stopped or continued (a continuation compares them)."""

    def _at(self, stage: str, where: int | None = None) -> None:
        wanted = os.environ.get("VAE_TEST_SIGTERM", "")
        if wanted == (stage if where is None else f"{stage}:{where}"):
            os.environ.pop("VAE_TEST_SIGTERM")  # once
            os.kill(os.getpid(), signal.SIGTERM)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._at("train", trainer.global_step)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not trainer.sanity_checking:
            self._at("validation", trainer.current_epoch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._at("test")
