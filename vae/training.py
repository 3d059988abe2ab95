"""One training run from a composed config: fit, test, record. The CLI wrapper is ``train.py``."""

import json
import logging
import os
import signal
import time
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from vae.config import ConfigError, validate
from vae.evaluation import SCALARS, evaluate_checkpoint
from vae.models import LatentVariableModel
from vae.sweep import in_a_sweep
from vae.sweep.folders import Recorded, describe, move_aside, recorded
from vae.sweep.pruning import trial_pruning
from vae.utils import flat_hyperparameters, instantiate_group, log_hyperparameters
from vae.utils.charts import log_chart_layout
from vae.utils.loggers import prepare_loggers
from vae.utils.steps import checkpoint_step

log = logging.getLogger(__name__)


def _final_metrics(trainer: L.Trainer) -> dict[str, float]:
    """Validation and test values, means over their whole sets. Training values are left out:
    they are logged per batch, so the last one describes a single batch, not the model."""
    return {name: float(value) for name, value in trainer.callback_metrics.items() if not name.startswith("train/")}


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, LatentVariableModel, L.Trainer]:
    """The data module, model and trainer a composed config describes."""
    datamodule = hydra.utils.instantiate(cfg.data)
    # _convert_: plain lists and dicts in the model, so checkpoints load with weights_only=True
    model = hydra.utils.instantiate(cfg.model, img_shape=datamodule.img_shape, _convert_="all")
    trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=instantiate_group(cfg.get("callbacks")), logger=instantiate_group(cfg.get("logger"))
    )
    return datamodule, model, trainer


def train(cfg: DictConfig) -> float | None:
    """Checks the config, fits the model, tests it and writes ``metrics.json`` into the run folder.

    Any failure is recorded there too (status ``failed``, the error, the metrics so far and the
    last good checkpoint) before it propagates.

    Returns:
        The value of ``cfg.optimized_metric`` (for sweepers such as Optuna); None when it is unset,
        and on every process but rank 0.

    Raises:
        ConfigError: ``cfg.optimized_metric`` names a metric this run did not log (e.g. val/elbo
            for a GAN); the run itself is complete and recorded.
    """
    started = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    trainer, history = None, {}
    try:
        validate(cfg)  # before anything is built or written
        if in_a_sweep():
            previous = _continue_in_folder(cfg, output_dir)
            if previous.action == "skip":  # the folder holds this run finished: its recorded value
                return _optimized_value(cfg, previous.metrics)
        resumed_from = _resume_checkpoint(cfg, output_dir)
        resumed = _load(resumed_from)
        history = _resumed_from(output_dir, resumed_from, resumed)
        if rank_zero_only.rank == 0:  # says what runs here, so a sweep continued into the folder knows it
            _record(cfg, output_dir, started, "running", {}, **history)
        if cfg.get("seed") is not None:
            L.seed_everything(cfg.seed, workers=True)
        prepare_loggers(cfg.get("logger"), resumed)
        datamodule, model, trainer = build(cfg)
        pruning = trial_pruning(cfg)
        if pruning is not None:
            trainer.callbacks.append(pruning)
        n_params = sum(p.numel() for p in model.parameters())
        log_hyperparameters(trainer, flat_hyperparameters(cfg, n_params))
        log_chart_layout(trainer, model)
        log.info(f"Run {cfg.run_name}: writing to {output_dir}")

        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        best_checkpoint, last_checkpoint = _checkpoints(trainer)
        # the last epoch's, taken now: testing resets them. A run continued after its last epoch (killed
        # while testing) trains none, and its last checkpoint holds them instead.
        metrics, best = {}, {}  # rank 0 records and returns them
        if trainer.is_global_zero:
            metrics = {**_load(last_checkpoint).get("validation", {}), **_final_metrics(trainer)}
            best = _best_scores(best_checkpoint)
        if pruning is not None and pruning.pruned:
            if trainer.is_global_zero:
                _record(cfg, output_dir, started, "pruned", metrics, n_params=n_params, **history, **best)
                log.info(f"Run {cfg.run_name} pruned after epoch {pruning.pruned_epoch}: {pruning.reason}")
                return _optimized_value(cfg, metrics)
            return None
        if cfg.get("test"):
            trainer.test(model, datamodule=datamodule, ckpt_path=best_checkpoint or None)
            metrics.update(_final_metrics(trainer))
        if cfg.evaluation.metrics != "none" and best_checkpoint and trainer.is_global_zero:
            device = trainer.strategy.root_device
            results = evaluate_checkpoint(Path(best_checkpoint), cfg.evaluation, device, run_cfg=cfg)
            metrics.update({name: results[name] for name in SCALARS if results.get(name) is not None})
    except SIGTERMException:
        # A scheduler's warning before a kill (SLURM, preemption): the run saved last.ckpt at this step
        # (vae.callbacks) and is recorded as interrupted, so resume= or the requeued job continues it.
        if trainer.is_global_zero:
            _, last = _checkpoints(trainer)
            _record(cfg, output_dir, started, "interrupted", _final_metrics(trainer), last_checkpoint=last, **history)
            log.warning(f"Run {cfg.run_name} interrupted by SIGTERM; continue it from {last or 'its start'}")
        raise SystemExit(128 + signal.SIGTERM) from None  # the shell's code for "terminated"
    except Exception as err:
        if trainer is None or trainer.is_global_zero:
            metrics = _final_metrics(trainer) if trainer else {}
            _, last = _checkpoints(trainer) if trainer else ("", "")
            error = f"{type(err).__name__}: {err}"
            _record(cfg, output_dir, started, "failed", metrics, error=error, last_checkpoint=last, **history)
            if trainer is not None:  # training had started: say where it can be picked up
                log.error(f"Run {cfg.run_name} failed; last good checkpoint: {last or 'none'}")
        raise
    if not trainer.is_global_zero:
        return None  # a sweeper reads rank 0's value (only rank 0 has the evaluation's metrics)
    details = {"n_params": n_params, "best_checkpoint": best_checkpoint, **history, **best}
    _record(cfg, output_dir, started, "completed", metrics, **details)
    shown = {k: round(v, 3) for k, v in metrics.items() if k.startswith("test/")}
    log.info(f"Test metrics (losses in nats per image): {shown}")
    log.info(f"Run folder: {output_dir}\nTensorBoard: tensorboard --logdir {output_dir}")
    return _optimized_value(cfg, {**metrics, **best.get("best_metrics", {})})


def _continue_in_folder(cfg: DictConfig, output_dir: Path) -> Recorded:
    """What a sweep job does with what its folder holds: the job a scheduler requeued, or a sweep run again
    into its folder (its sweeper decides the same before it launches anything; see hydra_plugins).

    Returns:
        The folder's record, whose ``action`` is ``skip`` when it holds this run finished (nothing is
        rewritten), ``resume`` from its ``last.ckpt`` (``ckpt_path`` is set), ``rerun`` from scratch
        (the earlier attempt moved aside), or ``new``.

    Raises:
        ConfigError: the folder holds a run of other settings.
    """
    previous = recorded(output_dir, cfg)
    if previous.differences:
        raise ConfigError([describe([previous])])
    if previous.action == "skip":
        log.info(f"Run {cfg.run_name}: {output_dir} already holds it ({previous.status}); skipped")
    elif previous.action == "resume":
        with open_dict(cfg):
            cfg.ckpt_path = "last"
    elif previous.action == "rerun" and rank_zero_only.rank == 0:
        # what Hydra has just written for this job stays; the attempt's own files go aside
        moved = move_aside(output_dir, previous.status, keep=(".hydra", f"{HydraConfig.get().job.name}.log"))
        log.info(f"Run {cfg.run_name}: its earlier attempt ({previous.status}) was moved to {moved}")
    return previous


def _resumed_from(output_dir: Path, path: Path | None, checkpoint: dict) -> dict:
    """``resumed_from``: every checkpoint this run continued from (``path``, holding ``checkpoint``, this
    time), earlier continuations included."""
    if path is None:
        return {}
    summary_path = output_dir / "metrics.json"
    earlier = json.loads(summary_path.read_text()).get("resumed_from", []) if summary_path.is_file() else []
    at = {"checkpoint": str(path), "epoch": checkpoint["epoch"], "step": checkpoint_step(checkpoint)}
    return {"resumed_from": [*earlier, {**at, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}]}


def _best_scores(best_checkpoint: str) -> dict:
    """``best_epoch`` and ``best_metrics``, the validation values the best checkpoint was ranked by
    (saved in it by ``vae.callbacks.ValidationScores``); empty without a best checkpoint or those values."""
    checkpoint = _load(best_checkpoint)
    if not checkpoint.get("validation"):
        return {}
    return {"best_epoch": checkpoint["epoch"], "best_metrics": dict(sorted(checkpoint["validation"].items()))}


def _load(checkpoint_path: str | Path | None) -> dict:
    """A checkpoint's contents (memory-mapped: only what is read is loaded); empty without a path."""
    return torch.load(checkpoint_path, map_location="cpu", weights_only=True, mmap=True) if checkpoint_path else {}


def _optimized_value(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """The value a sweeper optimizes: of the best checkpoint, the one tested and evaluated, for val/
    values too (not of the last epoch). A sweeper cannot rank a run without it, so a name the run
    never logged is an error that lists the names it did log, not a silent None."""
    name = cfg.get("optimized_metric")
    if name is None or name in metrics:
        return metrics.get(name)
    logged = ", ".join(sorted(k for k in metrics if "/kl_per_dim/" not in k))
    raise ConfigError([f"optimized_metric={name!r}: {cfg.model._target_} does not log it; it logged: {logged}"])


def _checkpoints(trainer: L.Trainer) -> tuple[str, str]:
    """Paths of the best checkpoint (by the monitored metric) and of the last one, '' when none."""
    best = next((cb.best_model_path for cb in trainer.checkpoint_callbacks if cb.monitor), "")
    last = next((cb.best_model_path for cb in trainer.checkpoint_callbacks if not cb.monitor), "")
    return best, last


def _record(cfg: DictConfig, output_dir: Path, started: float, status: str, metrics: dict, **details) -> None:
    """Writes the run's ``metrics.json``: its status, final metrics, timing and resolved config."""
    summary = {"run_name": cfg.run_name, "status": status, "metrics": dict(sorted(metrics.items())), **details}
    summary["wall_time_s"] = round(time.perf_counter() - started, 2)
    summary["config"] = OmegaConf.to_container(cfg, resolve=True)
    output_dir.mkdir(parents=True, exist_ok=True)  # Hydra makes it; a config composed in Python may not
    # written aside, then renamed into place: a run killed while writing leaves the previous record whole
    partial = output_dir / ".metrics.json.part"
    partial.write_text(json.dumps(summary, indent=2))
    os.replace(partial, output_dir / "metrics.json")


def _resume_checkpoint(cfg: DictConfig, output_dir: Path) -> Path | None:
    """The checkpoint ``ckpt_path`` names ("last": the run folder's last.ckpt), if it exists."""
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is None:
        return None
    path = output_dir / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(str(ckpt_path))
    return path if path.is_file() else None
