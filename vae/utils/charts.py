"""The Custom Scalars dashboard of a run: the curves a researcher compares, side by side in one chart each."""

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

CATEGORY = "Losses (nats per image)"


def chart_layout(model: L.LightningModule) -> dict[str, dict[str, list]]:
    """Charts for the values ``model`` logs, as ``add_custom_scalars`` takes them: each a list of tag
    regular expressions. The runs of a sweep merge their layouts (the same chart once), so a sweep
    of VAEs and auto-encoders gets the VAE's charts."""
    if not getattr(model, "has_encoder", True):  # the GAN: its losses are binary cross-entropies per image
        return {
            "GAN training": {
                "discriminator and generator losses": ["Multiline", [r"^train/(d|g)_loss$"]],
                "discriminator's belief that images are real": ["Multiline", [r"^train/d_(real|fake)$"]],
            }
        }
    terms = getattr(model, "scalar_terms", ())
    charts = {"loss, train and validation": ["Multiline", [r"^(train|val)/loss$"]]}
    if "kl" in terms:  # the reconstruction-regularization trade-off
        charts["reconstruction and KL, train and validation"] = ["Multiline", [r"^(train|val)/(recon|kl)$"]]
    if getattr(model, "logs_kl_per_dim", False):
        charts["KL per latent dimension, validation"] = ["Multiline", [r"^val/kl_per_dim/"]]
    return {CATEGORY: charts}


@rank_zero_only
def log_chart_layout(trainer: L.Trainer, model: L.LightningModule) -> None:
    """Writes ``chart_layout(model)`` to every TensorBoard logger."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_custom_scalars(chart_layout(model))
