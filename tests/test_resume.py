"""A run killed mid-epoch resumes in its own folder and ends exactly like an unbroken one."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.idx import write_mnist
from tests.tensorboard_events import load_events
from vae.utils.resume import resume_arguments

PROJECT = Path(__file__).resolve().parents[1]


def train_command(args: list[str]) -> list[str]:
    return [sys.executable, "train.py", *args]


def results(run: Path) -> dict[str, float]:
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    return {name: value for name, value in metrics.items() if not name.startswith("perf/")}


def kill_after_first_checkpoint(process: subprocess.Popen, run: Path) -> None:
    """SIGKILL as soon as last.ckpt holds an epoch >= 1, i.e. while epoch 2 trains."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        last = run / "checkpoints" / "last.ckpt"
        if last.is_file() and torch.load(last, weights_only=True)["epoch"] >= 1:
            process.kill()
            return
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.slow
def test_killed_run_resumes_in_its_folder_and_ends_like_an_unbroken_one(tmp_path):
    write_mnist(tmp_path / "data", n_train=3000, n_test=100)
    overrides = [
        f"data.root={tmp_path / 'data'}",
        "data.verify=header",
        "data.val_size=100",
        "data.batch_size=16",
        "data.binarize=dynamic",  # noise from the global generator: resuming must restore it
        "trainer.max_epochs=5",
        "trainer.accelerator=cpu",
        f"paths.root_dir={tmp_path}",
    ]
    unbroken, killed = tmp_path / "unbroken", tmp_path / "killed"
    subprocess.run(
        train_command([*overrides, f"hydra.run.dir={unbroken}"]), cwd=PROJECT, check=True, capture_output=True
    )

    process = subprocess.Popen(
        train_command([*overrides, f"hydra.run.dir={killed}"]),
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    kill_after_first_checkpoint(process, killed)
    assert process.wait() == -9 and not (killed / "metrics.json").exists()
    original_record = (killed / ".hydra" / "overrides.yaml").read_text()

    resumed = subprocess.run(train_command([f"resume={killed}"]), cwd=PROJECT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Restoring states from the checkpoint" in resumed.stdout + resumed.stderr

    assert results(killed) == results(unbroken)  # the same numbers, to the last bit
    assert (killed / ".hydra" / "overrides.yaml").read_text() == original_record
    assert (killed / ".hydra" / "resumed" / "overrides.yaml").is_file()
    # one TensorBoard run, its curves continued: what the killed run logged past the checkpoint is purged
    steps = [event.step for event in load_events(killed).Scalars("train/loss")]
    assert steps == sorted(set(steps)) == [event.step for event in load_events(unbroken).Scalars("train/loss")]


def test_resume_arguments_replay_the_run_s_own_overrides(tmp_path):
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(
        OmegaConf.create(["model=ae", "model.latent_dim=3", "ckpt_path=last"]), tmp_path / ".hydra/overrides.yaml"
    )
    assert resume_arguments([f"resume={tmp_path}"]) == [
        "model=ae",
        "model.latent_dim=3",
        "ckpt_path=last",
        f"hydra.run.dir={tmp_path}",
        "hydra.output_subdir=.hydra/resumed",
    ]
    assert resume_arguments(["model=ae"]) == ["model=ae"]
    with pytest.raises(SystemExit, match="give no other arguments"):
        resume_arguments([f"resume={tmp_path}", "trainer.max_epochs=20"])
    with pytest.raises(SystemExit, match="does not exist; give the folder of a run made by train.py"):
        resume_arguments([f"resume={tmp_path / 'nowhere'}"])
