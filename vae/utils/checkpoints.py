"""Rebuilding a trained model from its run folder."""

import os
from pathlib import Path

import hydra
import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf


def load_model(
    ckpt_path: str | os.PathLike, map_location: str | torch.device = "cpu", run_cfg: DictConfig | None = None
) -> L.LightningModule:
    """The model of a run, in eval mode, from a checkpoint and the config of the run it belongs to.

    Checkpoints hold plain values only (``vae.models.base.FACTORIES``), so the backbone,
    likelihood and optimizer are built again from ``<run>/.hydra/config.yaml``, the run's own
    composed config; the checkpoint must sit in ``<run>/checkpoints/``, where training put it.
    ``run_cfg`` gives that config directly instead. A model trained with ``channels_last`` comes back
    in that layout, so the evaluation runs as fast as training did (a conv decoder decodes about
    twice as fast in it on a CPU: ``benchmarks/channels_last.py``).

    Raises:
        FileNotFoundError: if the checkpoint or its run's config is missing.
    """
    ckpt_path = Path(ckpt_path).resolve()
    config_path = ckpt_path.parent.parent / ".hydra" / "config.yaml"
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"checkpoint {ckpt_path} does not exist")
    if run_cfg is None and not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path} does not exist: a checkpoint is rebuilt from the config of its run, "
            f"so keep it in <run>/checkpoints/ beside <run>/.hydra/"
        )
    checkpoint = torch.load(ckpt_path, map_location=map_location, weights_only=True)
    cfg = run_cfg if run_cfg is not None else OmegaConf.load(config_path)
    model = hydra.utils.instantiate(cfg.model, img_shape=checkpoint["hyper_parameters"]["img_shape"], _convert_="all")
    model.load_state_dict(checkpoint["state_dict"])
    if hasattr(model, "apply_memory_format"):  # the auto-encoders; the GAN has no layout option
        model.apply_memory_format()
    return model.eval()


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file, then renames it into place.

    A run killed while saving leaves the previous checkpoint whole, never a truncated one, so
    ``last.ckpt`` can always be resumed from.
    """

    def save_checkpoint(self, checkpoint: dict, path: str | os.PathLike, storage_options=None) -> None:
        path = Path(path)
        partial = path.with_name(f".{path.name}.part")
        super().save_checkpoint(checkpoint, partial, storage_options)
        os.replace(partial, path)
