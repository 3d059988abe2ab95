"""Data and noise under DDP on two CPU processes: each rank's shard, its own noise, and resuming."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from tests.commands import continue_like, kill_mid_run, killable_run, start_train
from tests.conftest import TINY
from vae.data import ImageDataModule

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
    split = ImageDataModule(root=mnist_root, val_size=40, verify="header")
    split.setup()
    training = {bytes(image.flatten().tolist()) for image in split.train_dataset.images}
    # 80 training images: 40 a rank, none twice, none missed (the random images are all distinct)
    assert [len(rank["images"]) for rank in ranks] == [40, 40]
    assert len(shards[0] & shards[1]) == 0  # images both ranks trained on
    assert len(training - shards[0] - shards[1]) == 0  # images neither did
    # each rank its own noise: the same draws on both would correlate their gradient noise
    assert ranks[0]["draw"] != ranks[1]["draw"]


@pytest.fixture(scope="module")
def unbroken_ddp(tmp_path_factory) -> tuple[list[str], Path]:
    """A 4-epoch DDP run never interrupted (its overrides and folder): what every stopped one must end like."""
    root = tmp_path_factory.mktemp("ddp")
    # 101 validation and 101 test images: uneven evaluation shards, as in the real 5,000 over 3 ranks
    overrides = [
        *DDP,
        *killable_run(root, n_train=2101, n_test=101, val_size=101),
        "trainer.max_epochs=4",
    ]  # 63 batches an epoch a rank
    unbroken = root / "unbroken"
    finished(start_train([*overrides, f"hydra.run.dir={unbroken}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    return overrides, unbroken


@pytest.mark.slow
def test_killed_ddp_run_resumes_every_rank_s_noise_and_ends_like_an_unbroken_one(unbroken_ddp, tmp_path):
    overrides, unbroken = unbroken_ddp
    saved = torch.load(unbroken / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]["RNGState"]
    assert len(saved["ranks"]) == 2 and not torch.equal(saved["ranks"][0]["torch"], saved["ranks"][1]["torch"])

    kill_mid_run(overrides, tmp_path / "killed", tmp_path / "killed.log")
    continue_like(tmp_path / "killed", unbroken)


def group_members(pgid: int) -> set[int]:
    """The processes of a process group (rank 0 and the ranks Lightning started as its children)."""
    members = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.add(int(stat.parent.name))
    return members


@pytest.mark.slow
def test_sigterm_to_every_ddp_process_at_once_stops_them_at_one_step_and_the_run_continues_exactly(
    unbroken_ddp, tmp_path
):
    overrides, unbroken = unbroken_ddp
    stopped, log = tmp_path / "stopped", tmp_path / "stopped.log"
    step = 63 + 10  # in the second epoch; both ranks pause there (tests.test_signals.PauseForSigterm)
    pause = ["+callbacks.pause._target_=tests.test_signals.PauseForSigterm", f"+callbacks.pause.step={step}"]
    with open(log, "w") as output:
        process = start_train([*overrides, *pause, f"hydra.run.dir={stopped}"], stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not (stopped / "paused").is_file() or len(group_members(process.pid)) < 2:
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    ranks = group_members(process.pid)
    os.killpg(process.pid, signal.SIGTERM)  # as SLURM signals every task of a job
    sent = time.monotonic()
    assert process.wait(timeout=60) == 143, log.read_text()[-3000:]
    while group_members(process.pid) & ranks:
        assert time.monotonic() - sent < 30, "a rank outlived the signal by 30 s"
        time.sleep(0.1)
    record = json.loads((stopped / "metrics.json").read_text())
    assert record["status"] == "interrupted"
    assert torch.load(record["last_checkpoint"], weights_only=True)["global_step"] == step  # both at one step
    assert "stopped by SIGTERM" in (stopped / "train_ddp_process_1.log").read_text()
    continue_like(stopped, unbroken)
