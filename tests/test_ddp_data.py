"""Data and noise under DDP on two CPU processes: each rank's shard, its own noise, and resuming."""

import json
import os
import subprocess
from pathlib import Path

import lightning as L
import pytest
import torch

from tests.commands import kill_after_first_checkpoint, results, start_train
from tests.conftest import TINY
from tests.idx import write_mnist
from vae.data import MNISTDataModule

DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "callbacks.every_n_epochs=0"]


class ServedImages(L.Callback):
    """Writes ``rank<r>.pt`` into ``folder``: the images rank r trained on in the first epoch, as
    uint8, and a draw of its global generator when training starts (taken aside, so training's
    own draws stay as they were)."""

    def __init__(self, folder: str) -> None:
        self.folder, self.images, self.draw = Path(folder), [], None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with torch.random.fork_rng(devices=[]):
            self.draw = torch.rand(1)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 0:
            self.images.append(batch[0].mul(255).round().to(torch.uint8).cpu())

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 0:
            record = {"images": torch.cat(self.images), "draw": self.draw}
            torch.save(record, self.folder / f"rank{trainer.global_rank}.pt")


def finished(process: subprocess.Popen) -> None:
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]


@pytest.mark.slow
def test_ranks_train_on_disjoint_shards_covering_the_split_and_draw_their_own_noise(mnist_root, tmp_path):
    # unseeded, the case where each process drew its own data seed; with a fixed seed the shards are
    # checked in tests/test_data.py and the ranks' own noise by the resume test below
    tiny = [o for o in TINY if not o.startswith("trainer.limit_train_batches")]  # the whole epoch
    served = ["+callbacks.served._target_=tests.test_ddp_data.ServedImages", f"+callbacks.served.folder={tmp_path}"]
    run = [*DDP, f"data.root={mnist_root}", f"paths.root_dir={tmp_path}", *tiny, "seed=null", "test=false"]
    # as in a shell where an earlier seeded run left PL_GLOBAL_SEED: Lightning seeds every rank from it
    env = {**os.environ, "PL_GLOBAL_SEED": "7"}
    finished(start_train([*run, *served, f"hydra.run.dir={tmp_path / 'run'}"], stderr=subprocess.PIPE, env=env))

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    shards = [{bytes(image.flatten().tolist()) for image in rank["images"]} for rank in ranks]
    split = MNISTDataModule(root=mnist_root, val_size=40, verify="header")
    split.setup()
    training = {bytes(image.flatten().tolist()) for image in split.train_dataset.images}
    # 80 training images: 40 a rank, none twice, none missed (the random images are all distinct)
    assert [len(rank["images"]) for rank in ranks] == [40, 40]
    assert len(shards[0] & shards[1]) == 0  # images both ranks trained on
    assert len(training - shards[0] - shards[1]) == 0  # images neither did
    # each rank its own noise: the same draws on both would correlate their gradient noise
    assert ranks[0]["draw"] != ranks[1]["draw"]


@pytest.mark.slow
def test_killed_ddp_run_resumes_every_rank_s_noise_and_ends_like_an_unbroken_one(tmp_path):
    # 101 validation and 101 test images: uneven evaluation shards, as in the real 5,000 over 3 ranks
    write_mnist(tmp_path / "data", n_train=2101, n_test=101)
    overrides = [
        *DDP,
        f"data.root={tmp_path / 'data'}",
        "data.verify=header",
        "data.val_size=101",
        "data.batch_size=16",
        "data.binarize=dynamic",  # noise from each rank's generator: resuming must restore both
        "trainer.max_epochs=4",
        f"paths.root_dir={tmp_path}",
    ]
    unbroken, killed = tmp_path / "unbroken", tmp_path / "killed"
    finished(start_train([*overrides, f"hydra.run.dir={unbroken}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    saved = torch.load(unbroken / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]["RNGState"]
    assert len(saved["ranks"]) == 2 and not torch.equal(saved["ranks"][0]["torch"], saved["ranks"][1]["torch"])

    log = tmp_path / "killed.log"  # a file, not a pipe: nothing reads a pipe while the run is watched
    with open(log, "w") as output:
        process = start_train([*overrides, f"hydra.run.dir={killed}"], stdout=output, stderr=subprocess.STDOUT)
        kill_after_first_checkpoint(process, killed, log)
    assert process.wait() == -9
    assert json.loads((killed / "metrics.json").read_text())["status"] == "running"  # what a kill leaves

    resumed = start_train([f"resume={killed}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output[-3000:]
    assert "Restoring states from the checkpoint" in output
    assert results(killed) == results(unbroken)  # the same numbers, to the last bit
