"""Shared machinery of the visual callbacks: when to draw, model state, where pictures go."""

import logging
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import Dataset

from vae.callbacks.drawing import PictureWriter, grid_png, write_png
from vae.utils.loggers import picture_stores
from vae.utils.steps import batches_stepped

log = logging.getLogger(__name__)


def take(dataset: Dataset, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` items of ``dataset`` as ``(x, labels)`` tensors (fewer if it is shorter).

    Indexes the dataset directly: a DataLoader iterator would draw its seed from the global
    RNG, and drawing pictures must never change the random stream the training runs on.
    """
    items = [dataset[i] for i in range(min(n, len(dataset)))]
    return torch.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items])


class VisualCallback(L.Callback):
    """Draws from the model after every ``every_n_epochs`` validation epochs and at the end of training.

    Subclasses implement :meth:`draw`, which runs on global rank zero with the model in eval
    mode under ``torch.no_grad()``; the model's mode is restored afterwards. Pictures go to
    TensorBoard (when a ``TensorBoardLogger`` is attached), to MLflow runs as artifacts, and as PNGs to
    ``<run folder>/images/<name>/epoch_<NNN>.png`` (NNN the 0-based epoch, as in checkpoint
    names), or ``final.png`` for the draw at the end of training.

    TensorBoard gets them at the loggers' step (:mod:`vae.utils.steps`): a draw after validation
    at the step of that validation's scalars, so a run resumed from the epoch's checkpoint
    (which purges events from the checkpoint's step on) keeps it.

    Each picture is encoded once for its PNG and its TensorBoard image
    (:class:`~vae.callbacks.drawing.PictureWriter`). With ``background``, training waits only for
    what a picture needs from the model (:meth:`draw`: codes, decoded images, as small CPU
    tensors), and figures, PNG encoding and event-file writes run on a background thread.
    Everything handed over is written before training ends, also when it fails (``on_exception``).
    A checkpoint saved right after a draw may then be written before its pictures are: it records
    the draw, and a run resumed from it draws again the pictures a kill left unwritten, from the
    same weights at the same step; an image TensorBoard shows at that step already (a kill between
    its event and its PNG) is not written there twice.

    Args:
        every_n_epochs: draw after every n-th validation epoch; 0 draws only at the end.
        background: render and write on a background thread (the same pictures); off by default, as
            in ``conf/callbacks/visuals.yaml``: on 2 CPU cores the thread slowed training.
    """

    needs_encoder = True  # draws from codes of images: skipped for models without an encoder (a GAN)

    def __init__(self, every_n_epochs: int = 1, background: bool = False) -> None:
        self.every_n_epochs = every_n_epochs
        self.writer = PictureWriter(type(self).__name__, background)
        self._drawn_after: int | None = None  # batches_stepped at the last draw
        self.step = 0  # the loggers' step of the current draw
        self._png_name = ""  # of the current draw
        self._images: tuple[torch.Tensor, torch.Tensor] | None = None
        self._last_draw: dict | None = None  # name, step, global_step and PNGs (relative to the run) of the last draw
        self._to_check: dict | None = None  # the last draw a checkpoint being resumed recorded
        self._shown: dict[str, set[str]] = {}  # while drawing again: image tags TensorBoard shows, by log dir

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        raise NotImplementedError

    @rank_zero_only
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if trainer.sanity_checking or self.every_n_epochs <= 0 or (epoch + 1) % self.every_n_epochs:
            return
        # Lightning logs the validation's scalars before it counts the batch that preceded it
        # (the epoch's last, which always steps): one step below the batches that stepped
        self._drawn_after = batches_stepped(trainer)
        self._run(trainer, pl_module, f"epoch_{epoch:03d}", step=self._drawn_after - 1)

    @rank_zero_only
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._drawn_after != batches_stepped(trainer):  # the last epoch was not drawn yet
            self._run(trainer, pl_module, "final", step=batches_stepped(trainer))
        self.writer.flush()  # every picture written before the loggers close

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # the pictures drawn so far are written before Lightning closes the loggers; the run's own error
        # is the one to report, so a picture's is only logged
        try:
            self.writer.flush()
        except Exception as err:
            log.error(f"{type(self).__name__}: a picture could not be written: {type(err).__name__}: {err}")

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.writer.flush()

    def state_dict(self) -> dict:
        return {"last_draw": self._last_draw} if self._last_draw else {}

    def load_state_dict(self, state_dict: dict) -> None:
        self._to_check = state_dict.get("last_draw")

    @rank_zero_only
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Resumed from a checkpoint saved right after a draw (the same weights): the pictures a kill left
        # unwritten are drawn again, at the step they belong to.
        draw, self._to_check = self._to_check, None
        if not draw or draw["global_step"] != trainer.global_step:
            return
        root = Path(trainer.default_root_dir)
        if all((root / png).is_file() for png in draw["pngs"]):
            return
        log.info(f"{type(self).__name__}: drawing {draw['name']} again, its pictures were not all written")
        self._shown = {tb.get_logdir(): images_shown(tb, draw["step"]) for tb in self._tensorboards(trainer)}
        try:
            self._run(trainer, pl_module, draw["name"], step=draw["step"])
        finally:
            self._shown = {}

    def applies(self, pl_module: L.LightningModule) -> bool:
        """Whether this picture exists for the model (none that needs codes of images for a GAN)."""
        return not self.needs_encoder or getattr(pl_module, "has_encoder", True)

    def _run(self, trainer: L.Trainer, pl_module: L.LightningModule, png_name: str, step: int) -> None:
        if not self.applies(pl_module):
            return
        self._png_name, self.step = png_name, step
        self._last_draw = {"name": png_name, "step": step, "global_step": trainer.global_step, "pngs": []}
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                self.draw(trainer, pl_module)
        finally:
            pl_module.train(was_training)

    def fixed_images(self, dataset: Dataset, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` items of ``dataset``, loaded at the first draw and reused at every other."""
        if self._images is None:
            self._images = take(dataset, n)
        return self._images

    @staticmethod
    def displayable(trainer: L.Trainer, x: torch.Tensor) -> torch.Tensor:
        """Pixel values for pictures: a data module that normalizes maps them back to [0, 1]."""
        denormalize = getattr(trainer.datamodule, "denormalize", None)
        return denormalize(x) if denormalize else x

    # --- output ------------------------------------------------------------------------------
    def _png_path(self, trainer: L.Trainer, tag: str) -> Path:
        folder = Path(trainer.default_root_dir) / "images" / tag.split("/")[-1]
        folder.mkdir(parents=True, exist_ok=True)
        self._last_draw["pngs"].append(f"images/{folder.name}/{self._png_name}.png")
        return folder / f"{self._png_name}.png"

    @staticmethod
    def _tensorboards(trainer: L.Trainer) -> list:
        return [logger.experiment for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]

    def log_image(self, trainer: L.Trainer, tag: str, grid: torch.Tensor) -> None:
        """Writes an image grid ``(C, H, W)`` with values in [0, 1]."""
        grid = grid.detach().float().clamp(0, 1).cpu()
        self.writer.submit(_image, grid, self._destination(trainer, tag))

    def log_figure(self, trainer: L.Trainer, tag: str, render: Callable[..., bytes], *data) -> None:
        """Writes the PNG of the matplotlib figure ``render(*data)`` draws (``data``: CPU tensors, numbers, text)."""
        self.writer.submit(_figure, render, data, self._destination(trainer, tag))

    def _destination(self, trainer: L.Trainer, tag: str) -> tuple:
        """Where a picture goes, as ``write_png`` takes it: its PNG, the TensorBoard writers, its tag and
        step, and the other loggers' stores (MLflow, W&B)."""
        path, stores = self._png_path(trainer, tag), picture_stores(trainer.loggers)
        tensorboards = [tb for tb in self._tensorboards(trainer) if tag not in self._shown.get(tb.get_logdir(), ())]
        return path, tensorboards, tag, self.step, stores


def images_shown(tensorboard, step: int) -> set[str]:
    """The tags of the images TensorBoard shows at ``step`` from the event files of a writer's folder (this run's
    own file included, with the purge a resumed run starts with), read as TensorBoard reads them."""
    tensorboard.flush()
    events = EventAccumulator(tensorboard.get_logdir(), size_guidance={"images": 0, "scalars": 1, "histograms": 1})
    events.Reload()
    return {tag for tag in events.Tags()["images"] if any(image.step == step for image in events.Images(tag))}


def _image(grid: torch.Tensor, destination: tuple) -> None:
    write_png(grid_png(grid), *destination)


def _figure(render: Callable[..., bytes], data: tuple, destination: tuple) -> None:
    write_png(render(*data), *destination)
