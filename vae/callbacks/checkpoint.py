"""Checkpoints that belong to their run folder, wherever the folder has moved."""

from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, resumable from a run folder that was copied or moved.

    A checkpoint records its callback's folder and the absolute paths of the best and last
    checkpoints. Restored into another folder, Lightning keeps the old best path (testing the other
    folder's checkpoint, or failing when it is gone) and forgets the best score (so an earlier, better
    epoch is no longer the best). The checkpoints travel with the run folder, so the recorded paths
    under the old folder are read as the same files under this one.
    """

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
