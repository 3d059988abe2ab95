"""The models under DDP on 2 CPU processes: the GAN trains, a NaN on one rank stops every rank."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY
from vae.models.gan import fid_noise

PROJECT = Path(__file__).resolve().parents[1]
DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]


def run_ddp(args: list[str], mnist_root: Path, run_dir: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """train.py on 2 CPU processes; a hung rank fails the test by the timeout instead of hanging it."""
    command = [sys.executable, "train.py", *DDP, f"data.root={mnist_root}", f"paths.root_dir={run_dir.parent}"]
    command += [*TINY, f"hydra.run.dir={run_dir}", *args]
    return subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=timeout)


def test_ranks_draw_different_fid_samples_and_the_same_at_every_epoch():
    first, second = fid_noise(4, 3, batch_idx=0, rank=0), fid_noise(4, 3, batch_idx=0, rank=1)
    assert not torch.equal(first, second)  # the two shards' fakes are different samples
    assert torch.equal(first, fid_noise(4, 3, batch_idx=0, rank=0))  # the same at every epoch
    assert not torch.equal(first, fid_noise(4, 3, batch_idx=1, rank=0))
    assert not torch.equal(fid_noise(4, 3, batch_idx=1, rank=0), fid_noise(4, 3, batch_idx=0, rank=1))


@pytest.mark.slow
def test_the_gan_trains_under_ddp_on_two_processes(mnist_root, tmp_path):
    run_dir = tmp_path / "gan"
    gan = ["model=gan", "model.latent_dim=4", "backbone.hidden_dims=[32]"]
    result = run_ddp(gan, mnist_root, run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["metrics"]["test/fid"] > 0
    # the saved config says which DDP ran: one that lets each backward leave a network without gradients
    assert summary["config"]["trainer"]["strategy"] == "ddp_find_unused_parameters_true"
