"""Random-generator states in checkpoints, so a resumed run draws the noise of an unbroken one."""

from typing import Any

import lightning as L
import torch


class RNGState(L.Callback):
    """Saves torch's generator states (CPU and CUDA) with every checkpoint and restores them when a
    run resumes from one.

    Everything random in training goes through these generators (reparameterization noise,
    dynamic binarization, DataLoader worker seeds; the data order has its own seeded generator).
    The states are applied when training starts: after the sanity check, which draws noise of
    its own on every start.
    """

    def __init__(self) -> None:
        self._to_restore: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return {"torch": torch.get_rng_state(), "cuda": cuda}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._to_restore = state_dict

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._to_restore is None:
            return
        torch.set_rng_state(self._to_restore["torch"])
        if self._to_restore["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self._to_restore["cuda"])
        self._to_restore = None
