"""Pictures drawn on a background thread: the same pictures as inline, written before the run ends (also when it
fails), and no thread left behind."""

import threading

import pytest
from hydra.core.global_hydra import GlobalHydra

from tests.conftest import compose_train
from tests.tensorboard_events import load_events
from vae.callbacks import NonFiniteLossError
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
