"""The latent space in TensorBoard's Projector: codes of validation images, labelled by class and shown as images."""

import shutil
from pathlib import Path

import lightning as L
import torch
from google.protobuf import text_format
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from vae.callbacks.base import VisualCallback
from vae.utils.steps import batches_stepped

CONFIG = "projector_config.pbtxt"  # where the Projector looks for a run's embeddings (in the run folder)
TAG = "latent_codes"


class LatentProjector(VisualCallback):
    """Writes the codes (posterior means; the code of an auto-encoder) of a fixed set of validation
    images for TensorBoard's Projector (PCA, t-SNE, UMAP in 2-D and 3-D), with the class name of each
    as its label and the image itself as its sprite. Skipped for models without an encoder (a GAN).

    Each draw is one entry of the Projector's tensor menu, ``latent_codes:<step>``. Its files
    (``<step>/latent_codes/``: the codes as TSV, the labels, the sprite) sit in the run folder beside
    the event files: 0.72 MB for 1,000 images of 20-D codes (the TSV 0.39 MB, the sprite 0.33 MB).

    Args:
        n_images: validation images (the first of the split, the same at every draw); 0 writes none.
        every_n_epochs: 0 (the default in ``conf/callbacks/visuals.yaml``) writes once, at the end of
            training; n also after every n-th validation epoch.
        background: see ``VisualCallback``.
    """

    def __init__(self, n_images: int = 1000, every_n_epochs: int = 0, background: bool = False) -> None:
        super().__init__(every_n_epochs, background)
        self.n_images = n_images
        self._earlier: dict[str, list] = {}  # per log folder, the entries a resumed run keeps (before its checkpoint)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Resumed (the loops' state is restored by now): the killed process's entries before the checkpoint
        # stay in the config, as each process's SummaryWriter writes only its own; those from the
        # checkpoint's step on are drawn again.
        self._earlier = {}
        start = batches_stepped(trainer)
        tensorboards = self._tensorboards(trainer) if trainer.is_global_zero else []  # other ranks' are dummies
        for root in [Path(tensorboard.get_logdir()) for tensorboard in tensorboards]:
            if not (root / CONFIG).is_file():
                continue
            entries = text_format.Parse((root / CONFIG).read_text(), ProjectorConfig()).embeddings
            self._earlier[str(root)] = [entry for entry in entries if _step(entry) < start]
            for entry in entries:
                if _step(entry) >= start:
                    shutil.rmtree(root / Path(entry.tensor_path).parent, ignore_errors=True)
        super().on_train_start(trainer, pl_module)

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        tensorboards = self._tensorboards(trainer)
        if self.n_images <= 0 or not tensorboards:
            return
        x, labels = self.fixed_images(trainer.datamodule.val_dataset, self.n_images)
        codes = pl_module.encode_all(x).float().cpu()
        images = self.displayable(trainer, x).clamp(0, 1)
        metadata = [trainer.datamodule.classes[int(y)] for y in labels]
        self.writer.submit(_embeddings, tensorboards, codes, metadata, images, self.step, self._earlier)


def _step(entry) -> int:
    """The step of a Projector entry, from its ``<tag>:<step>`` tensor name."""
    return int(entry.tensor_name.rsplit(":", 1)[1])


def _embeddings(
    tensorboards: list, codes: torch.Tensor, metadata: list[str], images: torch.Tensor, step: int, earlier: dict
) -> None:
    for tensorboard in tensorboards:
        tensorboard.add_embedding(codes, metadata=metadata, label_img=images, global_step=step, tag=TAG)
        config_path = Path(tensorboard.get_logdir()) / CONFIG
        kept = earlier.get(str(config_path.parent))
        if kept:  # put back the entries a resumed run keeps, in step order
            config = text_format.Parse(config_path.read_text(), ProjectorConfig())
            entries = sorted([*kept, *config.embeddings], key=_step)
            config.ClearField("embeddings")
            config.embeddings.extend(entries)
            config_path.write_text(text_format.MessageToString(config))
