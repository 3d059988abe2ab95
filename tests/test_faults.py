"""Faults injected into real runs, and how each ends: diverging losses, a failing sweep job, repeat runs."""

import json
from pathlib import Path

import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from tests.commands import train_py
from tests.conftest import TINY, compose_train
from vae.callbacks import NonFiniteLossError
from vae.runs.record import write_record
from vae.training import train
from vae.utils.checkpoints import AtomicCheckpointIO


def poisoned(module: str, step: int) -> list[str]:
    return [
        "+callbacks.poison._target_=tests.helpers.PoisonWeights",
        f"+callbacks.poison.module={module}",
        f"+callbacks.poison.step={step}",
    ]


@pytest.mark.parametrize(
    ("module", "terms", "log_every"),
    [("decoder", "recon term", 1), ("encoder", "recon and kl terms", 1), ("decoder", "recon term", 50)],
)
def test_a_non_finite_loss_stops_the_run_names_step_and_term_and_keeps_the_last_good_checkpoint(
    make_cfg, tmp_path, module, terms, log_every
):
    # 3 batches an epoch: the weights turn NaN before step 4, in the second epoch. Read back every
    # step, or (log_every=50) only at the epoch's last batch: still before validation and checkpoints.
    with pytest.raises(NonFiniteLossError) as error:
        train(make_cfg("trainer.max_epochs=3", f"trainer.log_every_n_steps={log_every}", *poisoned(module, 4)))
    assert f"at training step 4 (epoch 1), in the {terms}" in str(error.value)

    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["status"] == "failed" and "NonFiniteLossError" in summary["error"]
    assert Path(summary["last_checkpoint"]).name == "last.ckpt"
    checkpoint = torch.load(summary["last_checkpoint"], weights_only=True)
    assert checkpoint["epoch"] == 0  # the last good epoch; nothing was saved after the NaN
    assert all(torch.isfinite(value).all() for value in checkpoint["state_dict"].values())
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["epoch_000.ckpt", "last.ckpt"]


def test_same_config_and_seed_give_identical_metrics(mnist_root, tmp_path):
    runs = []
    for name in ("first", "second"):
        train(compose_train(["trainer.max_epochs=2", "data.binarize=dynamic"], tmp_path / name, mnist_root))
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())["metrics"]
        runs.append({k: v for k, v in metrics.items() if not k.startswith("perf/")})
    assert runs[0] == runs[1]
    assert "test/loss" in runs[0]


@pytest.mark.slow
def test_a_failing_sweep_job_is_recorded_and_the_others_finish(mnist_root, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "model.latent_dim=2,0,3", f"data.root={mnist_root}", f"paths.root_dir={tmp_path}", *TINY]
    result = train_py(*args, f"hydra.sweep.dir={sweep}")
    assert result.returncode != 0  # the sweep as a whole reports the failure
    summaries = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}
    assert {name: s["status"] for name, s in summaries.items()} == {
        "vae-mlp-z2-b1_0": "completed",
        "vae-mlp-z0-b1_1": "failed",
        "vae-mlp-z3-b1_2": "completed",  # ran after the failing job
    }
    assert "model.latent_dim=0: must be a whole number >= 1" in summaries["vae-mlp-z0-b1_1"]["error"]
    assert summaries["vae-mlp-z3-b1_2"]["metrics"]["test/loss"] > 0


def test_a_save_that_dies_midway_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 1}, path)

    def dies_midway(self, checkpoint, target, storage_options=None):
        Path(target).write_bytes(b"half a checkpoint")  # what a killed writer leaves behind
        raise KeyboardInterrupt

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"epoch": 2}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 1}


def test_a_record_that_dies_midway_leaves_the_previous_metrics_json_whole(tmp_path, monkeypatch):
    # a sweep run again reads every run's metrics.json to skip, resume or rerun it: a half-written one
    # would stop the whole sweep
    folder = tmp_path / "run"
    write_record(folder, {"status": "running"})

    def dies_midway(self, text, *args, **kwargs):
        Path.write_bytes(self, text[: len(text) // 2].encode())  # what a killed writer leaves behind
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        write_record(folder, {"status": "completed", "metrics": {"test/loss": 1.0}})
    assert json.loads((folder / "metrics.json").read_text(encoding="utf-8"))["status"] == "running"
