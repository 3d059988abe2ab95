"""One training run from a composed config: fit, test, evaluate, record. The CLI wrapper is ``train.py``."""

import logging
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig

from vae.callbacks.hooks import skip_undefined_batch_hooks
from vae.config import validate
from vae.evaluation import SCALARS, evaluate_checkpoint
from vae.models import LatentVariableModel
from vae.runs.continuation import SKIP
from vae.runs.outcome import final_metrics
from vae.runs.record import COMPLETED, PRUNED
from vae.runs.run import Run
from vae.utils import flat_hyperparameters, instantiate_group, log_hyperparameters
from vae.utils.charts import log_chart_layout
from vae.utils.hardware import cuda_checks_without_nvml
from vae.utils.loggers import log_evaluation, prepare_loggers

log = logging.getLogger(__name__)


def build(
    cfg: DictConfig,
    loggers: DictConfig | None = None,
    callbacks: list[L.Callback] = (),
    datamodule: L.LightningDataModule | None = None,
) -> tuple[L.LightningDataModule, LatentVariableModel, L.Trainer]:
    """The data module, model and trainer a composed config describes.

    Args:
        datamodule: the data module of ``cfg.data``, if already made.
        loggers: the logger configs as prepared for this run (``vae.utils.loggers.prepare_loggers``);
            by default ``cfg.logger`` as it is.
        callbacks: more callbacks, after those of ``cfg.callbacks``.
    """
    cuda_checks_without_nvml()
    datamodule = datamodule or hydra.utils.instantiate(cfg.data)
    # _convert_: plain lists and dicts in the model, so checkpoints load with weights_only=True
    model = hydra.utils.instantiate(cfg.model, img_shape=datamodule.img_shape, _convert_="all")
    loggers = instantiate_group(cfg.get("logger") if loggers is None else loggers)
    callbacks = [*instantiate_group(cfg.get("callbacks")), *callbacks]
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    skip_undefined_batch_hooks(trainer.callbacks)  # Lightning's own included
    return datamodule, model, trainer


def train(cfg: DictConfig) -> float | None:
    """Checks the config, fits the model, tests it, evaluates it if asked, and records the run in
    ``metrics.json`` in its folder (:mod:`vae.runs`: a failure or a SIGTERM is recorded too).

    A folder that already holds this run decides how it starts (:mod:`vae.runs.continuation`): finished, it
    is skipped; killed or interrupted, it continues from ``last.ckpt``; failed, it runs again.

    Returns:
        The value of ``cfg.optimized_metric`` (for sweepers such as Optuna); None when it is unset,
        and on every process but rank 0.

    Raises:
        ConfigError: a bad value, a folder holding a run of other settings, or an ``optimized_metric``
            the run did not log (``vae.runs.run.MetricNotLogged``: the run is recorded failed).
        FolderIsLive: another process runs in the folder; nothing was changed.
    """
    with Run(cfg) as run:
        validate(cfg)  # before anything is built or written
        start = run.start()
        if start.action == SKIP:  # the folder holds this run finished: its recorded value
            return run.optimized_value(start.state.metrics)
        if cfg.get("seed") is not None:
            L.seed_everything(cfg.seed, workers=True)
        datamodule = hydra.utils.instantiate(cfg.data)
        datamodule.prepare_data()  # missing or bad files are reported before any logger or model exists
        loggers = prepare_loggers(cfg.get("logger"), run.resumed)
        datamodule, model, trainer = build(cfg, loggers, run.callbacks(), datamodule)
        run.watch(trainer, model)
        log_hyperparameters(trainer, flat_hyperparameters(cfg, run.n_params))
        log_chart_layout(trainer, model)
        log.info(f"Run {cfg.run_name}: writing to {run.folder}")

        trainer.fit(model, datamodule=datamodule, ckpt_path=start.checkpoint)
        metrics = run.fit_metrics()  # the last epoch's: testing resets them
        if run.pruned:
            return run.finish(PRUNED, metrics)
        if cfg.get("test"):
            trainer.test(model, datamodule=datamodule, ckpt_path=run.best_checkpoint or None)
            metrics |= final_metrics(trainer)
        if cfg.evaluation.metrics != "none" and run.best_checkpoint and trainer.is_global_zero:
            device = trainer.strategy.root_device
            results = evaluate_checkpoint(Path(run.best_checkpoint), cfg.evaluation, device, run_cfg=cfg)
            scalars = {name: results[name] for name in SCALARS if results.get(name) is not None}
            figures = {f"eval/{png.stem}": png for png in sorted((run.folder / "images" / "eval").glob("*.png"))}
            log_evaluation(trainer.loggers, scalars, figures, results["step"])
            metrics |= scalars
        return run.finish(COMPLETED, metrics)
