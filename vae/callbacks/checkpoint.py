"""Checkpoints that belong to their run folder, wherever the folder has moved, and a last one written
where SIGTERM stopped training."""

import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, resumable from a run folder that was copied or moved.

    A checkpoint records its callback's folder and the absolute paths of the best and last
    checkpoints. Restored into another folder, Lightning keeps the old best path (testing the other
    folder's checkpoint, or failing when it is gone) and forgets the best score (so an earlier, better
    epoch is no longer the best). The checkpoints travel with the run folder, so the recorded paths
    under the old folder are read as the same files under this one.

    With ``save_on_sigterm``, a checkpoint without a monitor is also written when SIGTERM stops
    training mid-epoch: schedulers (SLURM, preemption) send it some time before they kill a job, and
    the run then raises ``SIGTERMException`` after the current batch (``vae.runs.interrupt``) and
    Lightning calls ``on_exception`` on every process, so the save (a collective under DDP) runs on all
    of them. The checkpoint holds the batches the epoch has served (``vae.data.tensors.TensorLoader``)
    and the noise generators (``vae.callbacks.RNGState``), so a run continued from it ends as an
    unbroken one. Lightning's ``save_on_exception`` would save on every exception, a diverged model's
    too, and leave ``best_model_path`` at the older file.

    Args:
        save_on_sigterm: save at the step where SIGTERM stopped training (monitor None only: a
            mid-epoch state has no validation score to rank).
        *args, **kwargs: Lightning's ``ModelCheckpoint``.
    """

    def __init__(self, *args: Any, save_on_sigterm: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if save_on_sigterm and self.monitor is not None:
            raise ValueError(f"save_on_sigterm is for a checkpoint without a monitor, not monitor={self.monitor!r}")
        self.save_on_sigterm = save_on_sigterm

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        super().on_exception(trainer, pl_module, exception)  # Lightning's save_on_exception (off by default)
        if not (self.save_on_sigterm and isinstance(exception, SIGTERMException)) or trainer.state.fn != "fit":
            return  # a test stopped by SIGTERM leaves the checkpoints of training as they are
        epoch, step = trainer.current_epoch, trainer.global_step
        done = trainer.fit_loop.epoch_loop.batch_progress.current.completed  # batches of this epoch trained
        if not 0 < done < trainer.num_training_batches:
            # After the epoch's last batch its validation may have run, and its epoch-end checkpoints
            # not yet: a checkpoint here would resume without the scores they rank by. The epoch is
            # trained again from the checkpoint before it, which is as exact.
            kept = self.best_model_path or "none, the run starts again"
            _log_once(trainer, f"SIGTERM at the end of epoch {epoch}: no checkpoint written; last one: {kept}")
            return
        # Under DDP every process stops at the same step (vae.runs.interrupt: they agree at each batch's
        # end, whichever of them was signalled), so the save, a collective, runs on all of them.
        path = self.format_checkpoint_name({"epoch": epoch, "step": step})
        self.best_model_path = path  # before saving: the checkpoint records itself, as Lightning's saves do
        trainer.save_checkpoint(path, self.save_weights_only)
        batch = f"batch {done} of {trainer.num_training_batches}"
        _log_once(trainer, f"SIGTERM: saved {path} at epoch {epoch}, {batch}, step {step}")

    @property
    def state_key(self) -> str:
        # ModelCheckpoint's own key, so checkpoints written before this class existed restore its state
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if old and self.dirpath and old != self.dirpath:
            state_dict = _rebased(state_dict, Path(old), Path(self.dirpath))
        super().load_state_dict(state_dict)


def _rebased(state_dict: dict[str, Any], old: Path, new: Path) -> dict[str, Any]:
    """``state_dict`` with every path under ``old`` moved under ``new``."""

    def move(path: str) -> str:
        return str(new / Path(path).relative_to(old)) if path and Path(path).is_relative_to(old) else path

    state = dict(state_dict, dirpath=str(new))
    for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
        if key in state:
            state[key] = move(state[key])
    if "best_k_models" in state:
        state["best_k_models"] = {move(path): score for path, score in state["best_k_models"].items()}
    return state


def _log_once(trainer: L.Trainer, message: str) -> None:
    """``message`` in the run's log, once: every process reaches the same point."""
    if trainer.is_global_zero:
        log.info(message)
