"""Pictures encoded once for their PNG file and their TensorBoard image, and, on request, rendered and written
off the training path: matplotlib rendering, PNG encoding and event-file writes on a background thread."""

import io
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from tensorboard.compat.proto.summary_pb2 import Summary

DPI = 100  # of every figure's PNG


def pixels_png(pixels: np.ndarray) -> bytes:
    """PNG of ``(H, W, C)`` uint8 pixels (C = 1, 3 or 4) with only the channels the picture needs: an opaque
    picture without its alpha channel, a grey one as one channel (what it shows is the same; there is a half
    to a third less to compress, which halves the encoding time)."""
    if pixels.shape[2] == 4 and pixels[..., 3].min() == 255:
        pixels = pixels[..., :3]
    if pixels.shape[2] == 3 and all(np.array_equal(pixels[..., 0], pixels[..., c]) for c in (1, 2)):
        pixels = pixels[..., :1]
    buffer = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(pixels.squeeze(2) if pixels.shape[2] == 1 else pixels))
    # zlib's level 3, not the default 6: these pictures encode in half to two thirds of the time, 2-10% larger
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def grid_png(grid: torch.Tensor) -> bytes:
    """PNG of an image grid ``(C, H, W)`` with values in [0, 1], converted as torchvision's ``save_image`` does."""
    return pixels_png(grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy())


def figure_png(figure: Figure) -> bytes:
    """PNG of a matplotlib figure at 100 dpi (rendered by Agg, no pyplot state)."""
    figure.set_dpi(DPI)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return pixels_png(np.asarray(canvas.buffer_rgba()))


def write_png(png: bytes, path: Path, tensorboards: list, tag: str, step: int, stores: list = ()) -> None:
    """The same PNG bytes, as an image summary, to every TensorBoard writer, then to every store of ``stores``
    (``vae.utils.loggers.picture_stores``: MLflow runs, W&B runs), and last to ``path``, renamed into place: a
    PNG on disk is whole and every logger has it (a run resumed after a kill draws again what has no PNG).

    The stores read the file from a temporary ``.writing-*/<path's folder>/`` beside that folder: its name and its
    folder's name are the final ones, which is what an MLflow artifact is named by."""
    if tensorboards:
        with Image.open(io.BytesIO(png)) as image:
            width, height = image.size
            channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[image.mode]
        encoded = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=png)
        summary = Summary(value=[Summary.Value(tag=tag, image=encoded)])
        for tensorboard in tensorboards:  # torch's SummaryWriter: its file writer queues events under a lock
            tensorboard._get_file_writer().add_summary(summary, global_step=step)
            tensorboard.flush()
    with tempfile.TemporaryDirectory(prefix=".writing-", dir=path.parent.parent) as folder:
        writing = Path(folder) / path.parent.name / path.name
        writing.parent.mkdir()
        writing.write_bytes(png)
        for store in stores:
            store(writing, tag, step)
        os.replace(writing, path)


class PictureWriter:
    """Renders and writes pictures in the order they were handed over: inline, or with ``background`` on
    one background thread.

    ``submit`` returns after the work, or at once with ``background`` (the same pictures). ``flush``
    waits for everything handed over, re-raises the first error of the work and ends the thread, so
    none outlives the run; the next ``submit`` starts a new one.
    """

    def __init__(self, name: str, background: bool = False) -> None:
        self.name, self.background = name, background
        self._thread: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    def submit(self, work: Callable, *args) -> None:
        if not self.background:
            work(*args)
            return
        self._raise_errors(wait=False)
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pictures-{self.name}")
        self._pending.append(self._thread.submit(work, *args))

    def flush(self) -> None:
        try:
            self._raise_errors(wait=True)
        finally:
            if self._thread is not None:
                self._thread.shutdown(wait=True)
                self._thread = None

    def _raise_errors(self, wait: bool) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            if wait or future.done():
                future.result()  # raises what the work raised
            else:
                self._pending.append(future)
