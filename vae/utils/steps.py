"""The loggers' step: one x-axis for every TensorBoard event of a run, from a live trainer or a checkpoint.

Lightning logs at the count of training batches that stepped the optimizers. ``global_step``
counts optimizer steps instead: the same under automatic optimization, but two a batch for the
GAN (manual optimization, two optimizers).
"""

import lightning as L


def batches_stepped(trainer: L.Trainer) -> int:
    """Training batches whose optimizer steps are done, the current one included.

    Under manual optimization Lightning allows no gradient accumulation, so every completed
    batch stepped; ``batch_progress.total`` is restored from checkpoints like ``global_step``.
    """
    if trainer.lightning_module.automatic_optimization:
        return trainer.global_step  # one optimizer step a batch that stepped
    return trainer.fit_loop.epoch_loop.batch_progress.total.completed


def checkpoint_step(checkpoint: dict) -> int:
    """The loggers' step a run resumed from ``checkpoint`` logs first: the batches it had stepped on.

    Not the saved ``_batches_that_stepped``: a checkpoint written at validation end (with
    ``check_val_every_n_epoch`` > 1) holds it before the epoch's last batch is counted, and
    Lightning adds that batch when it resumes.

    Args:
        checkpoint: a Lightning checkpoint, as ``torch.load`` returns it.
    """
    fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
    manual = fit_loop.get("epoch_loop.manual_optimization.optim_step_progress", {}).get("total", {})
    batches = fit_loop.get("epoch_loop.batch_progress", {}).get("total", {})
    if manual.get("completed") and "completed" in batches:  # manual optimization: see batches_stepped
        return batches["completed"]
    return checkpoint["global_step"]
