"""The HPARAMS entry of a run in TensorBoard: its settings and the metrics to compare it by."""

from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard.summary import hparams

# Columns of the HPARAMS table. TensorBoard fills each with the last value of that scalar in
# the run, so they show the final numbers without logging anything twice.
HPARAM_METRICS = (
    "test/loss", "test/recon", "test/kl", "test/elbo", "val/loss", "val/elbo",
    # filled once the run is evaluated (evaluate.py, or evaluation.metrics in train.py)
    "test/nll", "samples/fid", "samples/inception_score", "recon/accuracy",
)  # fmt: skip
GROUPS = ("model", "backbone", "likelihood", "optimizer")
# Settings every run reports, whatever its model or backbone ("None" where one does not apply,
# e.g. mc_samples for an auto-encoder, channels for an MLP).
CORE = (
    "model.latent_dim",
    "model.beta",
    "model.mc_samples",
    "model.kl_warmup_epochs",
    "backbone.hidden_dims",
    "backbone.channels",
    "backbone.strides",
    "optimizer.lr",
    "data.batch_size",
    "data.binarize",
    "trainer.max_epochs",
    "trainer.precision",
    "seed",
)


def _scalar(value: Any) -> bool | int | float | str:
    """TensorBoard takes bool, int, float and str only."""
    if isinstance(value, bool | int | float | str):
        return value
    return str(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)


def flat_hyperparameters(cfg: DictConfig, n_params: int) -> dict[str, Any]:
    """A run's settings for the HPARAMS table: the group choices, ``CORE`` and every overridden key.

    TensorBoard takes the table's columns from one run of the sweep, picked arbitrarily, so all
    runs must report the same keys. The jobs of a sweep share their override keys (only the
    values differ), so a sweep over VAEs and AEs, MLPs and conv nets still lines up, and the
    table shows exactly what was varied. Outside a Hydra app only ``CORE`` is reported.
    """
    hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
    choices: dict[str, str] = dict(hydra_cfg.runtime.choices) if hydra_cfg else {}
    overrides: list[str] = list(hydra_cfg.overrides.task) if hydra_cfg else []
    params: dict[str, Any] = {group: choices.get(group, "") for group in GROUPS}
    override_keys = [o.key_or_group for o in OverridesParser.create().parse_overrides(overrides) if not o.is_delete()]
    for key in [*CORE, *override_keys]:
        params[key] = choices[key] if key in choices else _scalar(OmegaConf.select(cfg, key, default=None))
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
