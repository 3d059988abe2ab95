"""The sweep report on a synthetic multirun folder: rows, statuses, files."""

import csv
import json
from pathlib import Path

import pytest
import torch
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import save_image

from vae.report import main, report


def make_run(sweep: Path, name: str, overrides: list[str], latent_dim: int, summary: dict | None) -> Path:
    """A job folder as Hydra and train.py leave it; ``summary`` None: no metrics.json yet."""
    run = sweep / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (run / ".hydra" / "config.yaml").write_text(f"model:\n  latent_dim: {latent_dim}\n")
    if summary is not None:
        (run / "metrics.json").write_text(json.dumps(summary))
    return run


def completed(loss: float, kl: float) -> dict:
    metrics = {"test/loss": loss, "test/kl": kl, "test/recon": loss - kl, "val/loss": loss + 1, "train/loss": 1.0}
    return {"status": "completed", "metrics": metrics, "n_params": 1000, "wall_time_s": 12.5}


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Four jobs of ``-m model=vae,ae model.latent_dim=2,10``: two done (one evaluated), one failed, one running."""
    sweep = tmp_path / "multirun"
    small = make_run(sweep, "vae-mlp-z2-b1_0", ["model=vae", "model.latent_dim=2"], 2, completed(150.0, 5.0))
    large = make_run(sweep, "vae-mlp-z10-b1_1", ["model=vae", "model.latent_dim=10"], 10, completed(110.0, 20.0))
    failure = {"status": "failed", "metrics": {}, "error": "NonFiniteLossError: the KL term is nan at step 3"}
    make_run(sweep, "ae-mlp-z2-b1_2", ["model=ae", "model.latent_dim=2"], 2, failure)
    running = make_run(sweep, "ae-mlp-z10-b1_3", ["model=ae", "model.latent_dim=10"], 10, None)
    with SummaryWriter(running) as writer:  # what a run in progress has logged so far
        for epoch, loss in enumerate([140.0, 130.0]):
            writer.add_scalar("val/loss", loss, global_step=epoch)
            writer.add_scalar("epoch", epoch, global_step=epoch)
            writer.add_scalar("train/loss", loss + 5, global_step=epoch)
    for run in (small, large):
        (run / "images" / "prior_samples").mkdir(parents=True)
        save_image(torch.rand(1, 28, 28), run / "images" / "prior_samples" / "epoch_000.png")
    evaluation = {"test/nll": 104.5, "test/eval_elbo": -108.0, "samples/fid": 3.2, "step": 10}
    evaluation |= {"samples_kind": "decoder means E[x|z], z ~ N(0, I)"}
    evaluation |= {"noise_robustness": {"sigma": [0.0, 1.0], "accuracy": [0.9, 0.5]}}
    (large / "checkpoints").mkdir()
    (large / "checkpoints" / "eval.json").write_text(json.dumps({"epoch_001.ckpt": evaluation}))
    return sweep


def test_report_lists_every_run_with_its_status_and_numbers(sweep):
    report(sweep)
    with (sweep / "report.csv").open() as file:
        rows = {row["run"]: row for row in csv.DictReader(file)}
    # sorted by the swept settings: model, then latent dim in numeric order
    assert list(rows) == ["ae-mlp-z2-b1_2", "ae-mlp-z10-b1_3", "vae-mlp-z2-b1_0", "vae-mlp-z10-b1_1"]
    assert {name: row["status"] for name, row in rows.items()} == {
        "vae-mlp-z2-b1_0": "completed",
        "vae-mlp-z10-b1_1": "completed",
        "ae-mlp-z2-b1_2": "failed",
        "ae-mlp-z10-b1_3": "unfinished",
    }
    assert (rows["vae-mlp-z10-b1_1"]["model"], rows["vae-mlp-z10-b1_1"]["model.latent_dim"]) == ("vae", "10")
    assert float(rows["vae-mlp-z10-b1_1"]["test/loss"]) == 110.0
    assert float(rows["vae-mlp-z10-b1_1"]["test/nll"]) == 104.5  # from eval.json
    assert rows["vae-mlp-z2-b1_0"]["test/nll"] == ""  # not evaluated
    assert "NonFiniteLossError" in rows["ae-mlp-z2-b1_2"]["error"]
    assert (float(rows["ae-mlp-z10-b1_3"]["val/loss"]), rows["ae-mlp-z10-b1_3"]["epoch"]) == (130.0, "1")
    assert "train/loss" not in rows["vae-mlp-z2-b1_0"]  # per-batch values describe no model


def test_report_writes_markdown_and_figures(sweep):
    report(sweep)
    text = (sweep / "report.md").read_text()
    assert "4 runs: 2 completed, 1 failed, 1 unfinished" in text
    assert "nats per image" in text
    assert "`ae-mlp-z2-b1_2`: NonFiniteLossError: the KL term is nan at step 3" in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 4  # header and one row per run
    expected = ["metrics_vs_latent_dim.png", "kl_vs_recon.png", "noise_robustness.png", "sheet_prior_samples.png"]
    expected += ["training_curves.png"]
    for name in expected:
        assert (sweep / name).stat().st_size > 0
        assert f"]({name})" in text
    assert not (sweep / "sheet_reconstructions.png").exists()  # no run drew any


def test_a_row_describes_the_best_checkpoint_and_older_runs_the_last_epoch(sweep):
    # the best checkpoint (epoch 1) scored val/loss 108; the last epoch 111, as metrics records it
    large = sweep / "vae-mlp-z10-b1_1"
    summary = json.loads((large / "metrics.json").read_text())
    summary |= {"best_epoch": 1, "best_metrics": {"val/loss": 108.0, "val/kl": 19.0}}
    (large / "metrics.json").write_text(json.dumps(summary))
    report(sweep)
    with (sweep / "report.csv").open() as file:
        rows = {row["run"]: row for row in csv.DictReader(file)}
    assert float(rows["vae-mlp-z10-b1_1"]["val/loss"]) == 108.0  # the checkpoint test/* were measured on
    assert float(rows["vae-mlp-z2-b1_0"]["val/loss"]) == 151.0  # no best_metrics recorded: the last epoch's


def test_report_command_refuses_a_folder_without_runs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code == 1
    assert f"{tmp_path}: no run folders" in capsys.readouterr().err


def test_report_shows_the_evaluation_elbo_its_gap_to_the_nll_and_what_was_sampled(sweep):
    # a cheap evaluation (no NLL) of the other VAE: its ELBO is the only likelihood-valid number when grey levels
    # were served, and it is shown
    small = sweep / "vae-mlp-z2-b1_0"
    (small / "checkpoints").mkdir()
    (small / "checkpoints" / "eval.json").write_text(json.dumps({"last.ckpt": {"test/eval_elbo": -151.0, "step": 5}}))
    report(sweep)
    with (sweep / "report.csv").open() as file:
        rows = {row["run"]: row for row in csv.DictReader(file)}
    evaluated, cheap = rows["vae-mlp-z10-b1_1"], rows["vae-mlp-z2-b1_0"]
    assert (float(evaluated["test/eval_elbo"]), float(cheap["test/eval_elbo"])) == (-108.0, -151.0)
    assert float(evaluated["test/nll_elbo_gap"]) == pytest.approx(3.5)  # -ELBO - NLL: what k samples tighten
    assert cheap["test/nll_elbo_gap"] == ""
    assert evaluated["samples"] == "decoder means E[x|z], z ~ N(0, I)"
    header = next(line for line in (sweep / "report.md").read_text().splitlines() if line.startswith("| run"))
    assert {"test/eval_elbo", "test/nll_elbo_gap", "samples"} <= {cell.strip() for cell in header.split("|")}
