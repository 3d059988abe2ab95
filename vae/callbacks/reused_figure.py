"""A figure drawn again after every epoch over the pixels kept from its last full draw, not built again."""

from collections.abc import Sequence

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vae.callbacks.drawing import DPI, pixels_png


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
