"""Runs and their folders: the record of a run (:mod:`vae.runs.record`), whether a run starts, is skipped,
continues or runs again in its folder (:mod:`vae.runs.continuation`), the lock that keeps one process per
folder (:mod:`vae.runs.lock`), a run from start to end (:mod:`vae.runs.run`), SIGTERM
(:mod:`vae.runs.interrupt`), ``resume=`` (:mod:`vae.runs.resume`) and a search's pruning
(:mod:`vae.runs.pruning`). The sweepers of ``hydra_plugins`` ask this package, as every job does."""

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode


def in_a_sweep() -> bool:
    """Whether this process runs a job of a Hydra multirun (a sweep or a search)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
