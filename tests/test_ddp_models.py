"""The models under DDP on CPU processes: the GAN trains, a NaN on one rank stops every rank."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY
from vae.models.gan import fid_noise

PROJECT = Path(__file__).resolve().parents[1]
DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]


def run(command: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    """``command`` in the project folder; on a timeout (a hung rank) its whole process group is killed."""
    process = subprocess.Popen(
        command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )  # Lightning starts the other ranks as its children
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"no result after {timeout} s, a rank hung:\n{output[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, output)


def run_ddp(args: list[str], mnist_root: Path, run_dir: Path) -> subprocess.CompletedProcess:
    """train.py on 2 CPU processes, writing into ``run_dir``."""
    paths = [f"data.root={mnist_root}", f"paths.root_dir={run_dir.parent}", f"hydra.run.dir={run_dir}"]
    return run([sys.executable, "train.py", *DDP, *paths, *TINY, *args])


def test_ranks_draw_different_fid_samples_and_the_same_at_every_epoch():
    first, second = fid_noise(4, 3, batch_idx=0, rank=0), fid_noise(4, 3, batch_idx=0, rank=1)
    assert not torch.equal(first, second)  # the two shards' fakes are different samples
    assert torch.equal(first, fid_noise(4, 3, batch_idx=0, rank=0))  # the same at every epoch
    assert not torch.equal(first, fid_noise(4, 3, batch_idx=1, rank=0))
    assert not torch.equal(fid_noise(4, 3, batch_idx=1, rank=0), fid_noise(4, 3, batch_idx=0, rank=1))


@pytest.mark.slow
def test_the_gan_trains_under_ddp_on_two_processes(mnist_root, tmp_path):
    run_dir = tmp_path / "gan"
    result = run_ddp(["model=gan", "model.latent_dim=4", "backbone.hidden_dims=[32]"], mnist_root, run_dir)
    assert result.returncode == 0, result.stdout[-3000:]
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["metrics"]["test/fid"] > 0
    # the saved config says which DDP ran: one that lets each backward leave a network without gradients
    assert summary["config"]["trainer"]["strategy"] == "ddp_find_unused_parameters_true"


@pytest.mark.slow
def test_a_nan_on_one_rank_stops_every_rank_with_the_message(mnist_root, tmp_path):
    # 3 batches an epoch on each rank; rank 1's decoder turns NaN before step 4, rank 0's stays finite
    poison = ["+callbacks.poison._target_=tests.helpers.PoisonWeights", "+callbacks.poison.module=decoder"]
    poison += ["+callbacks.poison.step=4", "+callbacks.poison.rank=1"]
    run_dir = tmp_path / "nan"
    result = run_ddp(["trainer.max_epochs=3", *poison], mnist_root, run_dir)
    assert result.returncode != 0
    message = "at training step 4 (epoch 1), in the recon term"
    assert message in result.stdout
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "failed" and "NonFiniteLossError" in summary["error"] and message in summary["error"]
