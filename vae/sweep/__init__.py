"""Sweeps that survive: what a run folder holds when a sweep is run again into it, and search pruning."""

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode


def in_a_sweep() -> bool:
    """Whether this process runs a job of a Hydra multirun (a sweep or a search)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
