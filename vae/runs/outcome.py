"""What a trainer has to show for a run: its final metrics and checkpoints, for the run's record."""

from pathlib import Path

import lightning as L
import torch


def final_metrics(trainer: L.Trainer | None) -> dict[str, float]:
    """Validation and test values, means over their whole sets. Training values are left out:
    they are logged per batch, so the last one describes a single batch, not the model."""
    if trainer is None:
        return {}
    return {name: float(value) for name, value in trainer.callback_metrics.items() if not name.startswith("train/")}


def checkpoints(trainer: L.Trainer | None) -> tuple[str, str]:
    """Paths of the best checkpoint (by the monitored metric) and of the last one, '' when none."""
    if trainer is None:
        return "", ""
    best = next((cb.best_model_path for cb in trainer.checkpoint_callbacks if cb.monitor), "")
    last = next((cb.best_model_path for cb in trainer.checkpoint_callbacks if not cb.monitor), "")
    return best, last


def load_checkpoint(path: str | Path | None) -> dict:
    """A checkpoint's contents (memory-mapped: only what is read is loaded); empty without a path."""
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True) if path else {}


def best_scores(best_checkpoint: str) -> dict:
    """``best_epoch`` and ``best_metrics``, the validation values the best checkpoint was ranked by
    (saved in it by ``vae.callbacks.ValidationScores``); empty without a best checkpoint or those values."""
    checkpoint = load_checkpoint(best_checkpoint)
    if not checkpoint.get("validation"):
        return {}
    return {"best_epoch": checkpoint["epoch"], "best_metrics": dict(sorted(checkpoint["validation"].items()))}
