"""A run stopped by SIGTERM (as SLURM stops a job) saves where it was mid-epoch and continues as if unbroken."""

import json
import logging
import os
import signal
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from tests.conftest import compose_train
from vae.callbacks import RunCheckpoint
from vae.data.tensors import ImageTensors, TensorLoader
from vae.training import train


class PauseForSigterm(L.Callback):
    """Test helper (``+callbacks.pause``): after training step ``step``, writes ``<run>/paused`` and waits
    for ``signal`` (SIGTERM; at most ``timeout`` seconds), so that a signal sent from outside lands at a
    known step however fast training goes. A run resumed after that step (its command line replays this
    callback) never pauses, nor a run whose folder is not named ``folder`` (or one of its comma-separated
    names) when one is given (a sweep's other jobs). The signal goes on to the handler the run has (it only
    notes it while training), which decides where training stops."""

    def __init__(self, step: int, timeout: float = 60.0, folder: str | None = None, signal: str = "SIGTERM") -> None:
        self.step, self.timeout, self.folder, self.signal = step, timeout, folder, signal

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        folder = Path(trainer.default_root_dir).name
        if trainer.global_step != self.step or (self.folder is not None and folder not in self.folder.split(",")):
            return
        number = signal.Signals[self.signal]  # SIGUSR2: SLURM's warning to a submitit job
        received, handler = [], signal.getsignal(number)

        def note(signum, frame):
            received.append(signum)
            handler(signum, frame)

        signal.signal(number, note)
        (Path(trainer.default_root_dir) / "paused").touch()
        deadline = time.monotonic() + self.timeout
        while not received and time.monotonic() < deadline:
            time.sleep(0.01)
        signal.signal(number, handler)


def ids(n: int) -> ImageTensors:
    """Images whose pixels all hold their own index, so a served batch tells which images it holds."""
    return ImageTensors(torch.arange(n, dtype=torch.uint8).view(n, 1, 1).expand(n, 28, 28), torch.arange(n))


def served(batches) -> list[list[int]]:
    return [[int(i) for i in (x[:, 0, 0, 0] * 255).round()] for x, _ in batches]


def test_a_restored_loader_skips_the_batches_its_epoch_had_served_then_serves_whole_epochs():
    def loader() -> TensorLoader:
        return TensorLoader(ids(50), batch_size=8, shuffle=True, seed=3)

    stopped, unbroken = loader(), loader()
    stopped.sampler.set_epoch(2)  # as Lightning does at the start of each epoch
    unbroken.sampler.set_epoch(2)
    whole = served(unbroken)
    batches = iter(stopped)
    first = served([next(batches), next(batches), next(batches)])
    state = stopped.state_dict()
    assert first == whole[:3] and state == {"served": 3}

    resumed = loader()
    resumed.load_state_dict(state)
    # Lightning makes the iterator before it sets the epoch: the order must be drawn lazily
    batches = iter(resumed)
    resumed.sampler.set_epoch(2)
    assert served(batches) == whole[3:]
    assert len(resumed) == 7 and resumed.state_dict() == {"served": 7}  # ceil(50 / 8): the whole epoch
    for loader_ in (resumed, unbroken):
        loader_.sampler.set_epoch(3)
    assert served(resumed) == served(unbroken) and len(served(resumed)) == 7  # the next epoch is whole


def test_a_state_restored_but_not_iterated_is_not_carried_into_the_next_epoch():
    # A checkpoint saved at validation end (check_val_every_n_epoch > 1) holds a finished epoch that
    # Lightning restores but does not iterate: the iterator it made then is dropped, and the next one
    # serves the next epoch whole.
    resumed = TensorLoader(ids(20), batch_size=8)
    resumed.load_state_dict({"served": 3})
    iter(resumed)
    assert len(served(resumed)) == 3


class SendSigterm(L.Callback):
    """Test helper (``+callbacks.sigterm``): SIGTERM to this very process after training step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)  # Lightning's handler notes it; the loop stops after this batch


def sigterm_at(step: int) -> list[str]:
    return ["+callbacks.sigterm._target_=tests.test_signals.SendSigterm", f"+callbacks.sigterm.step={step}"]


def stop(overrides: list[str], run: Path, mnist_root: Path) -> None:
    """Trains in this process until SIGTERM, which ends train() as it ends the program."""
    with pytest.raises(SystemExit):
        train(compose_train(overrides, run, mnist_root))
    GlobalHydra.instance().clear()


def test_the_torchvision_loader_resumed_mid_epoch_finishes_the_epoch_with_a_new_pass(mnist_root, tmp_path):
    # A DataLoader keeps no state: Lightning starts the epoch's batches again and stops after those it
    # had left (3 a limited epoch here), which is not an unbroken run's numbers but must not fail.
    overrides = ["data.loader=torchvision", "trainer.max_epochs=2"]
    stop([*overrides, *sigterm_at(4)], tmp_path, mnist_root)  # epoch 1, batch 1 of 3
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 4
    with pytest.warns(UserWarning, match="ended before the epoch ended and your dataloader is not resumable"):
        train(compose_train([*overrides, "ckpt_path=last"], tmp_path, mnist_root))
    GlobalHydra.instance().clear()
    assert torch.load(last, weights_only=True)["global_step"] == 6  # two epochs of three steps
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "completed"


def test_sigterm_after_an_epoch_s_last_batch_leaves_the_epoch_to_be_trained_again(mnist_root, tmp_path, caplog):
    # Its validation has run by then and its epoch-end checkpoints not: a checkpoint here would resume
    # without the validation scores they rank by
    with caplog.at_level(logging.INFO, logger="vae.callbacks.checkpoint"):
        stop(["trainer.max_epochs=2", *sigterm_at(3)], tmp_path, mnist_root)  # the last of epoch 0's 3 batches
    assert "SIGTERM at the end of epoch 0: no checkpoint written; last one: none" in caplog.text
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()


def test_only_a_checkpoint_without_a_monitor_saves_on_sigterm(tmp_path):
    with pytest.raises(ValueError, match="save_on_sigterm is for a checkpoint without a monitor"):
        RunCheckpoint(dirpath=tmp_path, monitor="val/loss", save_on_sigterm=True)
