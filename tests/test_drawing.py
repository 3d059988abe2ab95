"""Pictures drawn on a background thread: the same pictures as inline, written before the run ends (also when it
fails), and no thread left behind. Figures drawn again over kept pixels: the same as drawn anew. Grey grids: one
channel."""

import io
import threading

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from PIL import Image
from torchvision.utils import make_grid

from tests.conftest import compose_train
from tests.tensorboard_events import load_events
from vae.callbacks import NonFiniteLossError
from vae.callbacks.drawing import figure_png, grid_png, write_png
from vae.callbacks.kl import KLFigure
from vae.callbacks.latent import ScatterFigure
from vae.callbacks.reused_figure import ReusedFigure
from vae.training import train

# every visual callback draws with a 3-D latent space (the 3-D scatter too)
TAGS = {
    "images/reconstructions", "images/prior_samples", "images/latent_traversal", "images/interpolation",
    "figures/latent_scatter", "figures/latent_scatter_3d", "figures/kl_per_dim",
}  # fmt: skip


BACKGROUND = "callbacks.draw_in_background=true"


def run(overrides: list[str], folder, mnist_root) -> None:
    try:
        train(compose_train(["model.latent_dim=3", *overrides], folder, mnist_root))
    finally:
        GlobalHydra.instance().clear()


def pictures(folder) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted((folder / "images").rglob("*.png"))}


def tensorboard_images(folder) -> dict[str, list[tuple[int, bytes]]]:
    events = load_events(folder)
    return {tag: [(e.step, e.encoded_image_string) for e in events.Images(tag)] for tag in events.Tags()["images"]}


def picture_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("pictures-")]


def test_pictures_drawn_in_the_background_are_those_drawn_inline_and_no_thread_is_left(mnist_root, tmp_path):
    run(["trainer.max_epochs=2", BACKGROUND], tmp_path / "background", mnist_root)
    assert picture_threads() == []
    run(["trainer.max_epochs=2", "callbacks.draw_in_background=false"], tmp_path / "inline", mnist_root)
    background, inline = pictures(tmp_path / "background"), pictures(tmp_path / "inline")
    assert background == inline  # byte for byte
    assert {name.split("/")[1] for name in background} == {tag.split("/")[1] for tag in TAGS}
    assert {name.rsplit("/", 1)[1] for name in background} == {"epoch_000.png", "epoch_001.png"}
    events = tensorboard_images(tmp_path / "background")
    assert events == tensorboard_images(tmp_path / "inline") and set(events) == TAGS
    # the event holds the PNG file's own bytes: each picture is encoded once
    assert events["images/prior_samples"][1][1] == background["images/prior_samples/epoch_001.png"]


def test_a_run_that_fails_has_written_the_pictures_drawn_before(mnist_root, tmp_path):
    poison = ["+callbacks.poison._target_=tests.helpers.PoisonWeights", "+callbacks.poison.module=decoder"]
    with pytest.raises(NonFiniteLossError):  # at step 3, the first of the second epoch: right after a draw
        run(["trainer.max_epochs=3", *poison, "+callbacks.poison.step=3", BACKGROUND], tmp_path, mnist_root)
    assert {name.rsplit("/", 1)[1] for name in pictures(tmp_path)} == {"epoch_000.png"}
    assert len(pictures(tmp_path)) == len(TAGS)
    assert {tag: len(images) for tag, images in tensorboard_images(tmp_path).items()} == dict.fromkeys(TAGS, 1)
    assert picture_threads() == []


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def drawn_anew(reused: ReusedFigure) -> bytes:
    """The figure of ``reused`` as an ordinary full draw, its dynamic artists on top (what a draw over kept pixels
    shows)."""
    for artist in reused.dynamic:
        artist.set_animated(False)
        artist.set_zorder(100)
    return figure_png(reused.figure)


def scatter_draws() -> list[tuple]:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (500,), generator=generator)
    coords = torch.randn(10, 2, generator=generator)[labels] + 0.3 * torch.randn(500, 2, generator=generator)
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
    # the same limits with other points and labels; wider limits; back again
    return [(coords * scale, labels, f"PC1 ({share}% of var.)", f"PC2 ({share // 2}% of var.)", 8, classes)
            for scale, share in [(1, 30), (0.99, 31), (3, 40), (1, 30)]]  # fmt: skip


def kl_draws() -> list[tuple]:
    kl = torch.rand(12, generator=torch.Generator().manual_seed(0)) + 1
    return [(kl,), (kl.flip(0),), (kl * 4,), (kl,)]


@pytest.mark.parametrize(("make", "draws"), [(ScatterFigure, scatter_draws()), (KLFigure, kl_draws())])
def test_a_figure_drawn_again_is_the_same_figure_drawn_anew(make, draws):
    """A figure drawn again over the pixels kept from an earlier draw is, pixel for pixel, a new figure with the
    same data drawn in full; and its kept pixels are drawn again when its limits change."""
    figure = make()
    for data in draws:
        new = make()
        new.png(*data)
        assert (pixels(figure.png(*data)) == pixels(drawn_anew(new._reused))).all()
    # two of the four draws reused the kept pixels, and the wider limits were drawn in full, then the first again
    assert figure._reused.full_draws == 3


def test_a_grey_grid_is_encoded_as_one_channel_with_the_same_pixels():
    grey = make_grid(torch.rand(6, 1, 28, 28), nrow=3)  # torchvision repeats the one channel three times
    colour = grey.clone()
    colour[0, 0, 0] = 0.25
    with Image.open(io.BytesIO(grid_png(grey))) as image:
        assert image.mode == "L"
        assert (np.asarray(image) == grey[0].mul(255).add(0.5).clamp(0, 255).to(torch.uint8).numpy()).all()
    with Image.open(io.BytesIO(grid_png(colour))) as image:
        assert image.mode == "RGB"


def test_a_png_on_disk_is_whole_and_every_logger_has_it(tmp_path):
    # the PNG is what tells a resumed run that a picture was written: it appears last, by a rename, so a kill
    # (here a store that fails) leaves none, and never a truncated one
    png, path = grid_png(torch.rand(1, 8, 8)), tmp_path / "images" / "reconstructions" / "epoch_000.png"
    path.parent.mkdir(parents=True)
    stored = []

    def store(file, tag, step):
        stored.append((file.parent.name, file.name, file.read_bytes(), tag, step))

    def killed(file, tag, step):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_png(png, path, [], "images/reconstructions", 5, [store, killed])
    assert not path.exists() and stored == [("reconstructions", "epoch_000.png", png, "images/reconstructions", 5)]
    write_png(png, path, [], "images/reconstructions", 5, [store])
    assert path.read_bytes() == png and len(stored) == 2
    # and no temporary .writing-* folder is left beside it
    assert sorted(left.name for left in tmp_path.rglob("*")) == ["epoch_000.png", "images", "reconstructions"]
