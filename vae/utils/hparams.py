"""The HPARAMS entry of a run in TensorBoard: its settings and the metrics to compare it by."""

from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
from torch.utils.tensorboard.summary import hparams

from vae.runs import in_a_sweep
from vae.utils.loggers import unlogged_params

# Columns of the HPARAMS table. TensorBoard fills each with the last value of that scalar in
# the run, so they show the final numbers without logging anything twice.
HPARAM_METRICS = (
    "test/loss", "test/recon", "test/kl", "test/elbo", "val/loss", "val/elbo",
    # filled once the run is evaluated (evaluate.py, or evaluation.metrics in train.py)
    "test/nll", "samples/fid", "samples/inception_score", "recon/accuracy",
)  # fmt: skip
GROUPS = ("model", "backbone", "likelihood", "optimizer")
# The settings the studies' tables are organised by: the HPARAMS columns shown, after what a sweep varies.
HEADLINE = ("model", "model.latent_dim", "model.beta", "backbone", "likelihood")
# TensorBoard opens the HPARAMS table showing the first five settings of its experiment, which it
# sorts by "differs" (true first), then by name: the ones to show are those marked as differing.
SHOWN = 5
# Settings every run reports, whatever its model or backbone ("None" where one does not apply,
# e.g. mc_samples for an auto-encoder, channels for an MLP).
CORE = (
    "model.latent_dim",
    "model.beta",
    "model.mc_samples",
    "model.k",
    "model.kl_warmup_epochs",
    "model.prior",
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


def swept_keys() -> list[str]:
    """The keys the sweep of this job varies: its command's sweep overrides (kept in the sweep's
    ``multirun.yaml``) and the sweeper's ``params`` (and, for a search, the ``params_by_choice`` of this
    job's choice). Empty outside a sweep."""
    if not in_a_sweep():
        return []
    hydra_cfg = HydraConfig.get()
    keys = []
    multirun = Path(hydra_cfg.sweep.dir) / "multirun.yaml"
    if multirun.is_file():
        overrides = OverridesParser.create().parse_overrides(list(OmegaConf.load(multirun).hydra.overrides.task))
        keys += [o.key_or_group for o in overrides if o.is_sweep_override()]
    keys += list(hydra_cfg.sweeper.get("params") or {})
    for group, by_choice in (hydra_cfg.sweeper.get("params_by_choice") or {}).items():
        choice = hydra_cfg.runtime.choices.get(group)
        keys += list((by_choice.get(choice) if choice else None) or {})
    return list(dict.fromkeys(keys))


def experiment_summary(params: dict[str, Any], shown: list[str]) -> tuple:
    """The HPARAMS experiment of a run: its settings, ``HPARAM_METRICS`` as the metrics, and the
    settings ``shown`` marked as differing, which puts them first and makes them the visible columns.

    Returns:
        The summaries to write: the experiment, the session's start and its end.
    """
    experiment, session_start, session_end = hparams(params, dict.fromkeys(HPARAM_METRICS, 0.0))
    value = experiment.value[0]
    content = HParamsPluginData.FromString(value.metadata.plugin_data.content)
    for info in content.experiment.hparam_infos:
        info.differs = info.name in shown
    value.metadata.plugin_data.content = content.SerializeToString()
    return experiment, session_start, session_end


@rank_zero_only
def log_hyperparameters(trainer: L.Trainer, params: dict[str, Any]) -> None:
    """Writes the run's HPARAMS entry to every TensorBoard logger, declaring ``HPARAM_METRICS``, and
    fills the logger's ``hparams.yaml`` with ``params``. Every run of a sweep writes the same experiment,
    whichever of them TensorBoard reads it from: the swept keys, then ``HEADLINE``, up to ``SHOWN``
    columns, open visible. Other loggers get ``params`` as their hyperparameters (an MLflow run continued
    in its folder, those it does not hold yet).
    """
    shown = [key for key in dict.fromkeys([*swept_keys(), *HEADLINE]) if key in params][:SHOWN]
    summaries = experiment_summary(params, shown)
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.hparams.update(params)
            for summary in summaries:
                logger.experiment.file_writer.add_summary(summary)
        elif isinstance(logger, MLFlowLogger):
            logger.log_hyperparams(unlogged_params(logger, params))
        else:  # CSV: its hparams.yaml
            logger.log_hyperparams(params)
