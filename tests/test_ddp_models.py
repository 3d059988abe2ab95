"""The models under DDP on CPU processes: the GAN trains, a NaN on one rank stops every rank, and
test values are means over all the images whatever the number of processes.

Run as ``python -m tests.test_ddp_models <checkpoint> <metrics.json> <devices> <out.json>``, it tests
a checkpoint on that many processes (Lightning starts the others by running the module again).
"""

import json
import subprocess
import sys
from pathlib import Path

import hydra
import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from tests.commands import run_in_group
from tests.conftest import TINY
from vae.models.gan import fid_noise
from vae.training import train
from vae.utils import load_model

DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]


def run_ddp(args: list[str], mnist_root: Path, run_dir: Path) -> subprocess.CompletedProcess:
    """train.py on 2 CPU processes, writing into ``run_dir``."""
    paths = [f"data.root={mnist_root}", f"paths.root_dir={run_dir.parent}", f"hydra.run.dir={run_dir}"]
    return run_in_group([sys.executable, "train.py", *DDP, *paths, *TINY, *args])


def test_ranks_draw_different_fid_samples_and_the_same_at_every_epoch():
    first, second = fid_noise(4, 3, batch_idx=0, rank=0), fid_noise(4, 3, batch_idx=0, rank=1)
    assert not torch.equal(first, second)  # the two shards' fakes are different samples
    assert torch.equal(first, fid_noise(4, 3, batch_idx=0, rank=0))  # the same at every epoch
    assert not torch.equal(first, fid_noise(4, 3, batch_idx=1, rank=0))
    assert not torch.equal(fid_noise(4, 3, batch_idx=1, rank=0), fid_noise(4, 3, batch_idx=0, rank=1))


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


def measure_test_values(checkpoint: str, summary: str, devices: int, out: str) -> None:
    """Tests ``checkpoint`` on ``devices`` CPU processes in batches of 13 (40 test images: 3 batches
    in one process, 2 and 1 in the first and the last of three); rank 0 writes the test values to ``out``."""
    cfg = OmegaConf.create(json.loads(Path(summary).read_text())["config"])
    cfg.data.batch_size = 13
    model, datamodule = load_model(checkpoint, run_cfg=cfg), hydra.utils.instantiate(cfg.data)
    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    strategy = "ddp" if devices > 1 else "auto"
    trainer = L.Trainer(accelerator="cpu", devices=devices, strategy=strategy, enable_model_summary=False, **quiet)
    trainer.test(model, datamodule=datamodule, verbose=False)
    if trainer.is_global_zero:
        Path(out).write_text(json.dumps({name: float(value) for name, value in trainer.callback_metrics.items()}))
    if torch.distributed.is_initialized():  # else gloo's threads may abort the exit ("terminate called ...")
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_test_values_are_the_same_on_one_two_and_three_processes(make_cfg, tmp_path):
    train(make_cfg("model=ae"))  # deterministic: a VAE's values vary with each process's noise
    checkpoint, summary = tmp_path / "checkpoints" / "last.ckpt", tmp_path / "metrics.json"
    measure_test_values(str(checkpoint), str(summary), 1, str(tmp_path / "1.json"))
    for devices in (2, 3):
        out = tmp_path / f"{devices}.json"
        result = run_in_group(
            [sys.executable, "-m", "tests.test_ddp_models", str(checkpoint), str(summary), str(devices), str(out)]
        )
        assert result.returncode == 0, result.stdout[-3000:]
    values = [json.loads((tmp_path / f"{devices}.json").read_text()) for devices in (1, 2, 3)]
    assert set(values[0]) == {"test/loss", "test/recon"}
    for name, value in values[0].items():
        assert [v[name] for v in values[1:]] == [pytest.approx(value, rel=1e-6)] * 2, name


if __name__ == "__main__":
    measure_test_values(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
