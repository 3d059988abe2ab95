"""VAEs and auto-encoders on MNIST with PyTorch Lightning and Hydra."""

import logging

import vae.cluster.queue  # noqa: F401  (says submitit's failing sacct polls once)
import vae.cluster.slurm  # noqa: F401  (registers the resolvers of hydra/launcher=slurm's resources)
import vae.config  # noqa: F401  (registers the config schemas Hydra checks while composing)


class _NoTips(logging.Filter):
    """Drops Lightning's tips for third-party services from every run's log: it says what the run does."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("💡 Tip")


for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
    logging.getLogger(_name).addFilter(_NoTips())
