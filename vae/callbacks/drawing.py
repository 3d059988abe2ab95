"""Pictures encoded once for their PNG file and their TensorBoard image, figures drawn again without being built
again, and, on request, rendering and writing off the training path: matplotlib rendering, PNG encoding and
event-file writes on a background thread."""

import io
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.axis import Axis
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


def tick_limits(axis: Axis, low: float, high: float) -> tuple[float, float]:
    """Limits of ``axis`` around ``[low, high]`` and a 5% margin, widened to the axis's own tick marks: they stay the
    same while the data moves a little, so that a ``ReusedFigure`` keeps its pixels."""
    margin = 0.05 * (high - low) if high > low else 0.5
    ticks = axis.get_major_locator().tick_values(low - margin, high + margin)
    return float(ticks[0]), float(ticks[-1])


class ReusedFigure:
    """A figure drawn again after every epoch with new data, at a fraction of the cost of building a new one.

    Building a figure and drawing its axes, ticks and texts is most of its cost: two thirds of the latent scatter's
    80 ms on this project's CPU. Here the figure is built once by its owner, who changes its data, limits and texts
    between draws. What is not ``dynamic`` is rendered once and kept as pixels; each draw puts the ``dynamic``
    artists (the data and the texts that hold numbers) over those pixels, in their order. The kept pixels are
    rendered again whenever an axes' limits or a text that is not dynamic changed, so a draw is the picture,
    pixel for pixel, of the first draw of a new figure in the same state. Everything else must stay as built.
    """

    def __init__(self, figure: Figure, dynamic: Sequence[Artist]) -> None:
        figure.set_dpi(DPI)
        self.figure, self.dynamic = figure, list(dynamic)
        self.canvas = FigureCanvasAgg(figure)
        for artist in self.dynamic:
            artist.set_animated(True)  # what an Axes leaves out of its full draw (matplotlib's blitting)
        # an Axis draws its label even when animated, so those are hidden for the full draw instead (a title cannot
        # be: the Axes places it by its extent, which a hidden text does not have)
        labels = {axis.label for ax in figure.axes for axis in (ax.xaxis, ax.yaxis)}
        self._hidden = [artist for artist in self.dynamic if artist in labels]
        self.full_draws = 0  # renderings of the kept pixels
        self._frame: list | None = None  # what the kept pixels show: each axes' limits and fixed texts
        self._kept = None

    def _frame_now(self) -> list:
        frame = []
        for ax in self.figure.axes:
            texts = [text.get_text() for text in (ax.title, ax.xaxis.label, ax.yaxis.label) if text not in self.dynamic]
            frame.append((ax.get_xlim(), ax.get_ylim(), texts))
        return frame

    def png(self) -> bytes:
        frame = self._frame_now()
        if frame == self._frame:
            self.canvas.restore_region(self._kept)
        else:
            shown = [artist.get_visible() for artist in self._hidden]
            for artist in self._hidden:
                artist.set_visible(False)
            self.canvas.draw()
            for artist, visible in zip(self._hidden, shown, strict=True):
                artist.set_visible(visible)
            self._frame, self._kept = frame, self.canvas.copy_from_bbox(self.figure.bbox)
            self.full_draws += 1
        for artist in self.dynamic:
            self.figure.draw_artist(artist)
        return pixels_png(np.asarray(self.canvas.buffer_rgba()))


def write_png(png: bytes, path: Path, tensorboards: list, tag: str, step: int, stores: list = ()) -> None:
    """The same PNG bytes, as an image summary, to every TensorBoard writer and then to ``path``: a PNG on
    disk means its event is in the event file (a resumed run draws again what has no PNG). Then the file
    to every ``(client, run_id)`` of ``stores`` (MLflow) as the artifact ``images/<folder>/<name>``."""
    if tensorboards:
        with Image.open(io.BytesIO(png)) as image:
            width, height = image.size
            channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[image.mode]
        encoded = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=png)
        summary = Summary(value=[Summary.Value(tag=tag, image=encoded)])
        for tensorboard in tensorboards:  # torch's SummaryWriter: its file writer queues events under a lock
            tensorboard._get_file_writer().add_summary(summary, global_step=step)
            tensorboard.flush()
    path.write_bytes(png)
    for client, run_id in stores:
        client.log_artifact(run_id, str(path), f"images/{path.parent.name}")


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
