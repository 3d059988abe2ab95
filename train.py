"""Train a VAE or an auto-encoder on MNIST, then test it: ``python train.py [overrides]``.

Examples:
    python train.py                                    # MLP VAE, 10 epochs
    python train.py model=ae backbone=conv trainer=gpu
    python train.py -m model=vae,ae model.latent_dim=2,10,20
    python train.py resume=logs/runs/<run folder>      # continue a stopped run
"""

import gc

gc.disable()  # until the imports below are done (see there)

import logging
import sys

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from vae.callbacks import NonFiniteLossError
from vae.config import ConfigError
from vae.data.files import DataFileError, DataNotFoundError
from vae.runs.lock import FolderIsLive
from vae.runs.resume import resume_arguments
from vae.training import train

# torch, Lightning and the rest create about 800,000 objects while they are imported, 500,000 of which live as long
# as the process. Python's cyclic collector traversed them again and again: a second of every start-up, then pauses
# of 0.2 s during training and at the exit. It is off while they are imported; what they left as garbage is
# collected once, and the rest set apart (gc.freeze), never traversed again. docs/performance.md has the figures.
gc.collect()
gc.freeze()
gc.enable()

# Errors whose message says what to do: a single run prints the message alone, with no traceback.
USER_ERRORS = (ConfigError, DataNotFoundError, DataFileError, NonFiniteLossError, FolderIsLive)
log = logging.getLogger("train")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        return train(cfg)
    except USER_ERRORS as err:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the sweep records this job as failed and runs the others
        log.error(str(err))
        sys.exit(1)
    finally:
        # Each DDP process leaves its group itself: left to the interpreter's exit, gloo's threads can abort
        # it ("terminate called without an active exception"), as a rank that ends while rank 0 evaluates.
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.argv[1:] = resume_arguments(sys.argv[1:])
    main()
