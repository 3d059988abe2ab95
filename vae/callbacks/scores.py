"""The validation values each checkpoint was ranked by, saved in it."""

import lightning as L


class ValidationScores(L.Callback):
    """Saves in every checkpoint the validation values of the epoch it holds, as ``checkpoint["validation"]``
    (``{"val/loss": ...}``), so that the best checkpoint says what it scored: ``train`` reports those
    values and returns the optimized one from them, the checkpoint that is tested and evaluated.
    """

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        metrics = trainer.callback_metrics
        checkpoint["validation"] = {name: float(value) for name, value in metrics.items() if name.startswith("val/")}
