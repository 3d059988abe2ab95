"""A run killed mid-epoch resumes in its own folder and ends exactly like an unbroken one."""

import json
import shutil
import time
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from tests.commands import continue_like, kill_mid_run, killable_run, results, train_py
from tests.conftest import compose_train, train_in
from tests.tensorboard_events import load_events
from vae.runs.resume import resume_arguments
from vae.training import train


@pytest.mark.slow
def test_killed_run_resumes_in_its_folder_and_ends_like_an_unbroken_one(tmp_path):
    overrides = [
        *killable_run(tmp_path, n_train=3000, n_test=100, val_size=100),
        "callbacks.draw_in_background=true",  # a kill may leave the epoch's pictures unwritten: drawn again
        "trainer.max_epochs=5",
        "trainer.accelerator=cpu",
    ]
    unbroken, killed = tmp_path / "unbroken", tmp_path / "killed"
    train_py(*overrides, f"hydra.run.dir={unbroken}", check=True)
    kill_mid_run(overrides, killed)
    original_record = (killed / ".hydra" / "overrides.yaml").read_text()
    continue_like(killed, unbroken)
    assert (killed / ".hydra" / "overrides.yaml").read_text() == original_record
    assert (killed / ".hydra" / "resumed" / "overrides.yaml").is_file()
    # one TensorBoard run, its curves continued: what the killed run logged past the checkpoint is purged
    resumed_events, unbroken_events = load_events(killed), load_events(unbroken)
    steps = [event.step for event in resumed_events.Scalars("train/loss")]
    assert steps == sorted(set(steps)) == [event.step for event in unbroken_events.Scalars("train/loss")]
    # the pictures drawn up to the checkpoint survive its purge: one per epoch, as in the unbroken run
    for tag in ("images/prior_samples", "images/reconstructions", "figures/kl_per_dim"):
        pictures = [event.step for event in resumed_events.Images(tag)]
        assert pictures == [event.step for event in unbroken_events.Images(tag)] and len(pictures) == 5, tag


def test_resume_arguments_replay_the_run_s_own_overrides(tmp_path):
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(
        OmegaConf.create(["model=ae", "model.latent_dim=3", "ckpt_path=last"]), tmp_path / ".hydra/overrides.yaml"
    )
    assert resume_arguments([f"resume={tmp_path}"]) == [
        "model=ae",
        "model.latent_dim=3",
        "ckpt_path=last",
        f"hydra.run.dir='{tmp_path}'",
        "hydra.output_subdir=.hydra/resumed",
    ]
    assert resume_arguments(["model=ae"]) == ["model=ae"]
    with pytest.raises(SystemExit, match="give no other arguments"):
        resume_arguments([f"resume={tmp_path}", "trainer.max_epochs=20"])
    with pytest.raises(SystemExit, match="exists; give the folder of a run or of a sweep made by train.py"):
        resume_arguments([f"resume={tmp_path / 'nowhere'}"])


def test_resume_arguments_of_a_sweep_folder_run_the_sweep_again_into_it(tmp_path):
    hydra_overrides = [f"hydra.sweep.dir={tmp_path / 'elsewhere'}", "hydra.mode=MULTIRUN", "hydra/launcher=parallel"]
    recorded = {"hydra": {"overrides": {"hydra": hydra_overrides, "task": ["model.latent_dim=2,3", "seed=1"]}}}
    OmegaConf.save(OmegaConf.create(recorded), tmp_path / "multirun.yaml")
    assert resume_arguments([f"resume={tmp_path}"]) == [
        "-m",
        "hydra/launcher=parallel",  # the launcher it ran with
        "model.latent_dim=2,3",
        "seed=1",
        f"hydra.sweep.dir='{tmp_path}'",  # its folder where it is now, quoted for Hydra
    ]


def event_steps(run) -> dict[str, list[int]]:
    """The steps of every scalar, picture and histogram of a run's TensorBoard events, by tag."""
    events = load_events(run)
    tags = events.Tags()
    getters = {"scalars": events.Scalars, "images": events.Images, "histograms": events.Histograms}
    return {tag: [event.step for event in get(tag)] for kind, get in getters.items() for tag in tags[kind]}


@pytest.mark.slow
@pytest.mark.parametrize("every", [1, 2])
def test_a_run_resumed_from_its_checkpoint_has_every_event_of_an_unbroken_one(mnist_root, tmp_path, every):
    # check_val_every_n_epoch=1: Lightning saves checkpoints at the end of the training epoch; 2: at
    # the end of validation, before it counts the epoch's last batch (the checkpoint's
    # _batches_that_stepped is one short). The stopped run's final pictures and test scalars,
    # logged past the checkpoint, must be purged.
    def run(folder, *overrides):
        overrides = [f"trainer.check_val_every_n_epoch={every}", *overrides]
        train(compose_train(overrides, tmp_path / folder, mnist_root))
        GlobalHydra.instance().clear()

    run("unbroken", "trainer.max_epochs=4")
    run("resumed", "trainer.max_epochs=2")
    # TensorBoard reads a folder's event files in name order (time in seconds, host, pid, a counter of
    # this process): within one second the counter's 10 would sort before its 9. A resume by hand is
    # a new process, seconds later; here the same process resumes at once.
    time.sleep(1)
    run("resumed", "trainer.max_epochs=4", "ckpt_path=last")
    resumed, unbroken = event_steps(tmp_path / "resumed"), event_steps(tmp_path / "unbroken")
    if every == 2:  # Lightning replays the end of the checkpoint's epoch (on_train_epoch_end), and its
        # own "epoch" value gets a second point at the step before the checkpoint's
        resumed, unbroken = ({tag: steps for tag, steps in r.items() if tag != "epoch"} for r in (resumed, unbroken))
    assert resumed == unbroken


def test_pictures_drawn_again_on_resume_are_not_doubled_in_tensorboard(mnist_root, tmp_path):
    # A kill between a picture's TensorBoard event and its PNG (written in that order): the resumed run draws
    # that epoch's pictures again for their PNGs, but its event file has them already at that step.
    train_in(tmp_path, mnist_root, "trainer.max_epochs=2")
    missing = tmp_path / "images" / "kl_per_dim" / "epoch_001.png"
    drawn = missing.read_bytes()
    missing.unlink()
    time.sleep(1)  # the resumed run's event file sorts after the first one's (see the test above)
    train_in(tmp_path, mnist_root, "trainer.max_epochs=3", "ckpt_path=last")
    assert missing.read_bytes() == drawn
    events = load_events(tmp_path)
    for tag in events.Tags()["images"]:
        steps = [event.step for event in events.Images(tag)]
        assert steps == sorted(set(steps)) and len(steps) == 3, tag


@pytest.mark.parametrize("original", ["kept", "removed"])
def test_a_moved_run_folder_resumes_from_its_own_checkpoints(mnist_root, tmp_path, original):
    # epoch 1 validates with its decoder spoiled, so the best is epoch 0, saved before the move
    spoil = ["+callbacks.spoil._target_=tests.helpers.SpoilValidation", "+callbacks.spoil.epoch=1"]
    train(compose_train(["trainer.max_epochs=2", *spoil], tmp_path / "first", mnist_root))
    shutil.copytree(tmp_path / "first", tmp_path / "moved")
    kept = {path.name: path.read_bytes() for path in (tmp_path / "first" / "checkpoints").iterdir()}
    if original == "removed":
        shutil.rmtree(tmp_path / "first")
    moved = tmp_path / "moved"
    resume = [f"ckpt_path={moved / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=3", *spoil]
    train(compose_train(resume, moved, mnist_root))
    summary = json.loads((moved / "metrics.json").read_text())
    # the best of all three epochs, tested from the moved folder, not from (or missing in) the first one
    losses = [event.value for event in load_events(moved).Scalars("val/loss")]
    assert Path(summary["best_checkpoint"]).parent == moved / "checkpoints"
    assert summary["best_epoch"] == losses.index(min(losses)) != 1
    if original == "kept":  # and the first folder's files are left as they were
        assert {path.name: path.read_bytes() for path in (tmp_path / "first" / "checkpoints").iterdir()} == kept


def test_a_run_continued_after_its_last_epoch_records_what_an_unbroken_one_did(mnist_root, tmp_path):
    # Killed while testing, after its last checkpoint: the continuation trains no epoch, tests again, and
    # must still record the last epoch's validation values (Lightning has none to give: it ran no epoch).
    train(compose_train(["trainer.max_epochs=2"], tmp_path, mnist_root))
    GlobalHydra.instance().clear()
    unbroken = results(tmp_path)
    train(compose_train(["trainer.max_epochs=2", "ckpt_path=last"], tmp_path, mnist_root))
    GlobalHydra.instance().clear()
    assert results(tmp_path) == unbroken and "val/elbo" in unbroken
