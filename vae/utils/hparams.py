"""The HPARAMS entry of a run in TensorBoard: its settings and the metrics to compare it by."""

from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard.summary import hparams

# Columns of the HPARAMS table. TensorBoard fills each with the last value of that scalar in
# the run, so they show the final numbers without logging anything twice.
HPARAM_METRICS = ("test/loss", "test/recon", "test/kl", "test/elbo", "val/loss", "val/elbo")


def _flatten(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        items: dict[str, Any] = {}
        for key, value in node.items():
            if key not in ("_target_", "_partial_"):
                items.update(_flatten(value, f"{prefix}.{key}"))
        return items
    # TensorBoard takes bool, int, float and str only
    return {prefix: node if isinstance(node, bool | int | float | str) else str(node)}


def flat_hyperparameters(cfg: DictConfig, choices: dict[str, str], n_params: int) -> dict[str, Any]:
    """The settings that tell the runs of a sweep apart, as flat ``name: scalar`` pairs."""
    params: dict[str, Any] = {group: choices.get(group, "") for group in ("model", "backbone", "likelihood")}
    params.update(_flatten(OmegaConf.to_container(cfg.model, resolve=True), "model"))
    for key in (
        "data.batch_size",
        "data.binarize",
        "data.image_size",
        "trainer.max_epochs",
        "trainer.precision",
        "seed",
    ):
        params[key] = _flatten(OmegaConf.select(cfg, key), key)[key]
    params["n_params"] = n_params
    return params


@rank_zero_only
def log_hyperparameters(trainer: L.Trainer, params: dict[str, Any]) -> None:
    """Writes the run's HPARAMS entry to every TensorBoard logger, declaring ``HPARAM_METRICS``.

    Also fills the logger's ``hparams.yaml`` with ``params``.
    """
    experiment, session_start, session_end = hparams(params, dict.fromkeys(HPARAM_METRICS, 0.0))
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.hparams.update(params)
            for summary in (experiment, session_start, session_end):
                logger.experiment.file_writer.add_summary(summary)
