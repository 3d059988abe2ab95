"""One training run from a composed config: fit, test, record. The CLI wrapper is ``train.py``."""

import json
import logging
import time
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from vae.models import LatentVariableModel
from vae.utils import flat_hyperparameters, instantiate_group, log_hyperparameters

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
    """Fits the configured model, tests it and writes ``metrics.json`` into the run folder.

    Returns:
        The value of ``cfg.optimized_metric`` (for sweepers), or None if it was not logged.
    """
    started = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule, model, trainer = build(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    log_hyperparameters(trainer, flat_hyperparameters(cfg, n_params))
    log.info(f"Run {cfg.run_name}: writing to {output_dir}")

    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = _final_metrics(trainer)  # taken now: testing resets them
    best_checkpoint = next((cb.best_model_path for cb in trainer.checkpoint_callbacks if cb.monitor), "")
    if cfg.get("test"):
        trainer.test(model, datamodule=datamodule, ckpt_path=best_checkpoint or None)
        metrics.update(_final_metrics(trainer))
    metrics = dict(sorted(metrics.items()))
    if trainer.is_global_zero:
        summary = {
            "run_name": cfg.run_name,
            "status": "completed",
            "metrics": metrics,
            "n_params": n_params,
            "wall_time_s": round(time.perf_counter() - started, 2),
            "best_checkpoint": best_checkpoint,
            "config": OmegaConf.to_container(cfg, resolve=True),
        }
        (output_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
        shown = {k: round(v, 3) for k, v in metrics.items() if k.startswith("test/")}
        log.info(f"Test metrics (nats per image): {shown}")
        log.info(f"Run folder: {output_dir}\nTensorBoard: tensorboard --logdir {output_dir}")
    return metrics.get(cfg.optimized_metric)
