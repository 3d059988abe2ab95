"""Random-generator states: each DDP rank its own stream, and every rank's states in checkpoints, so a
resumed run draws the noise of an unbroken one."""

from typing import Any

import lightning as L
import numpy as np
import torch

TEST = 1  # the third entropy word of the test's seed, apart from the ranks' training streams


class RNGState(L.Callback):
    """Gives each data-parallel process its own random stream, saves torch's generator states (CPU
    and CUDA) of every process with every checkpoint and restores them when a run resumes from one.

    Everything random in training goes through these generators (reparameterization noise,
    dynamic binarization, DataLoader worker seeds; the data order has its own seeded generator).
    Every process seeds the run's seed when it starts, so under DDP all ranks would draw the same
    noise for their different images; :meth:`setup` reseeds each rank from the seed and its rank
    before the sanity check. A single-process run keeps the stream of the seed, as it always had.
    The saved states are applied when training starts: after the sanity check, which draws noise
    of its own on every start.
    Testing starts a stream of its own from the seed and the rank, so a checkpoint tests the same
    however the run got to it (also a run continued after its last epoch).

    Args:
        seed: the run's seed; None (an unseeded run) gives each rank a fresh seed from the system.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._to_restore: dict[str, Any] | None = None
        self._strategy = None  # the trainer's, through which state_dict gathers every rank's states
        self._reseeded = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._strategy = trainer.strategy
        if trainer.world_size == 1 or self._reseeded:
            return
        self._reseeded = True  # once: testing after fitting continues the stream, as in one process
        if self.seed is None:
            # Unseeded ranks are not always apart: Lightning seeds every process from PL_GLOBAL_SEED
            # when the environment holds one (left by an earlier seeded run in the same shell).
            torch.seed()
            return
        # independent streams from (seed, rank), the way Lightning seeds DataLoader workers
        torch.manual_seed(int(np.random.SeedSequence([self.seed, trainer.global_rank]).generate_state(1)[0]))

    def state_dict(self) -> dict[str, Any]:
        if self._strategy is None or self._strategy.world_size == 1:
            cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
            return {"torch": torch.get_rng_state(), "cuda": cuda}
        # Called on every rank when a checkpoint is saved, which rank 0 alone writes: gather them all.
        # Each rank draws on the CPU and on its own device only; NCCL gathers device tensors.
        device = self._strategy.root_device
        cpu = torch.get_rng_state()  # uint8, the same size on every rank
        cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.empty(0, dtype=torch.uint8)
        states = self._strategy.all_gather(torch.cat([cpu, cuda]).to(device)).cpu()  # (world_size, bytes)
        return {"ranks": [{"torch": state[: len(cpu)].clone(), "cuda": state[len(cpu) :].clone()} for state in states]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._to_restore = state_dict

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The test draws a stream of its own, from (seed, rank): its numbers depend on the checkpoint it
        # tests, not on what ran before it, so a run continued after its last epoch (killed while testing)
        # tests as the unbroken run did.
        if self.seed is not None:
            torch.manual_seed(int(np.random.SeedSequence([self.seed, trainer.global_rank, TEST]).generate_state(1)[0]))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state, self._to_restore = self._to_restore, None
        if state is None:
            return
        if "ranks" not in state:  # saved by one process
            if trainer.world_size > 1:
                return  # one stream for every rank again would undo setup; the numbers differ anyway
            torch.set_rng_state(state["torch"])
            if state["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda"])
            return
        if trainer.global_rank >= len(state["ranks"]):
            return  # resumed on more processes than saved it: this one keeps its fresh stream
        own = state["ranks"][trainer.global_rank]
        torch.set_rng_state(own["torch"])
        if len(own["cuda"]) and trainer.strategy.root_device.type == "cuda":
            torch.cuda.set_rng_state(own["cuda"], trainer.strategy.root_device)
