"""The sweep report on a synthetic multirun folder: rows, statuses, files."""

import csv
import json
from pathlib import Path

import pytest
import torch
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import save_image

from vae.report import main, report
from vae.report.runs import find_runs


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
    assert not {"continued", "earlier_attempts"} & rows["vae-mlp-z2-b1_0"].keys()  # a sweep from before launches


def test_report_writes_markdown_and_figures(sweep):
    report(sweep)
    text = (sweep / "report.md").read_text()
    assert "4 runs on MNIST: 2 completed, 1 failed, 1 unfinished" in text
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
    assert "- `sheet_reconstructions.png`: no run saved a picture under images/reconstructions/" in text
    assert "`training_curves.png`:" not in text


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


def read_rows(sweep: Path) -> dict[str, dict]:
    with (sweep / "report.csv").open() as file:
        return {row["run"]: row for row in csv.DictReader(file)}


def log_validation(run: Path, losses: list[float], steps_per_epoch: int = 5) -> None:
    """TensorBoard scalars as Lightning logs them each epoch (val/loss, epoch); no training values."""
    with SummaryWriter(run) as writer:
        for epoch, loss in enumerate(losses):
            writer.add_scalar("val/loss", loss, global_step=(epoch + 1) * steps_per_epoch)
            writer.add_scalar("epoch", epoch, global_step=(epoch + 1) * steps_per_epoch)


@pytest.fixture
def continued_sweep(tmp_path: Path) -> Path:
    """``-m model.latent_dim=2,3,4,5,6,7`` launched twice into its folder: its runs in every status, resumed,
    rerun, skipped and kept failed, and one trial only the first launch ran (as a continued search leaves)."""
    sweep = tmp_path / "multirun"
    names = [f"vae-mlp-z{dim}-b1_{i}" for i, dim in enumerate(range(2, 8))]
    resumed = {"checkpoint": "checkpoints/last.ckpt", "epoch": 1, "step": 10, "time": "2026-11-28T10:50:02"}
    validation = {"val/loss": 120.0}
    summaries = [
        completed(150.0, 5.0),
        completed(140.0, 6.0) | {"resumed_from": [resumed, resumed | {"epoch": 2, "step": 20}]},
        {"status": "running", "metrics": {}, "wall_time_s": 0.3},  # killed (SIGKILL) after its rerun started
        {"status": "interrupted", "metrics": validation, "wall_time_s": 30.0, "resumed_from": [resumed]},
        {"status": "pruned", "metrics": {"val/loss": 131.0}, "best_metrics": {"val/loss": 130.0}, "n_params": 900},
        {"status": "failed", "metrics": {}, "error": "NonFiniteLossError: the loss is nan at step 7"},
    ]
    for i, (name, summary) in enumerate(zip(names, summaries, strict=True)):
        make_run(sweep, name, [f"model.latent_dim={i + 2}"], i + 2, summary)
    log_validation(sweep / names[2], [125.0, 124.0])
    log_validation(sweep / names[3], [122.0])  # logged its first epoch before SIGTERM
    # the first attempt of run 2, moved aside before it ran again: a run folder of its own, but not the sweep's
    attempt = make_run(sweep / names[2] / "attempts", "2026-11-28_11-02-10_failed", ["model.latent_dim=4"], 4, {})
    (attempt / "metrics.json").write_text(json.dumps({"status": "failed", "metrics": {}, "error": "OSError"}))
    first = dict.fromkeys(names, "new")
    second = {names[0]: "skipped", names[1]: "resumed", names[2]: "rerun", names[3]: "resumed"}
    second |= {names[5]: "kept failed"}  # names[4]: a search continued launches only the trials it runs
    launches = [{"started": "2026-11-28T10:48:57", "jobs": first}, {"started": "2026-11-28T11:02:10", "jobs": second}]
    (sweep / "launches.json").write_text(json.dumps(launches))
    return sweep


def test_report_reads_the_statuses_of_runs_stopped_before_their_end(continued_sweep):
    report(continued_sweep)
    rows = read_rows(continued_sweep)
    statuses = {name.rsplit("_", 1)[1]: row["status"] for name, row in rows.items()}
    assert statuses == {"0": "completed", "1": "completed", "2": "unfinished", "3": "interrupted", "4": "pruned"} | {
        "5": "failed"
    }
    running, interrupted, pruned = rows["vae-mlp-z4-b1_2"], rows["vae-mlp-z5-b1_3"], rows["vae-mlp-z6-b1_4"]
    # a record written at the start holds no values: the run's last logged ones, and no wall time
    assert (float(running["val/loss"]), running["epoch"], running["wall_time_s"]) == (124.0, "1", "")
    assert (float(interrupted["val/loss"]), interrupted["epoch"]) == (120.0, "0")  # its record over its logs
    assert (float(pruned["val/loss"]), pruned["test/loss"]) == (130.0, "")  # the best epoch's; never tested

    text = (continued_sweep / "report.md").read_text()
    assert "6 runs on MNIST: 2 completed, 1 failed, 1 unfinished, 1 interrupted, 1 pruned." in text
    assert f"`python train.py resume={continued_sweep}` continues the sweep" in text
    assert "Pruned runs were stopped by the search" in text
    header = next(line for line in text.splitlines() if line.startswith("| run"))
    assert "epoch" in {cell.strip() for cell in header.split("|")}


def test_report_shows_how_each_run_of_a_continued_sweep_got_where_it_is(continued_sweep):
    report(continued_sweep)
    rows = read_rows(continued_sweep)
    assert {name: (row["continued"], row["earlier_attempts"]) for name, row in rows.items()} == {
        "vae-mlp-z2-b1_0": ("skipped", "0"),
        "vae-mlp-z3-b1_1": ("resumed ×2", "0"),
        "vae-mlp-z4-b1_2": ("rerun", "1"),
        "vae-mlp-z5-b1_3": ("resumed ×1", "0"),
        "vae-mlp-z6-b1_4": ("new in launch 1", "0"),
        "vae-mlp-z7-b1_5": ("kept failed", "0"),
    }
    text = (continued_sweep / "report.md").read_text()
    assert "| vae-mlp-z3-b1_1 | completed | resumed ×2 | 0 |" in text
    assert "launched 2 times into this folder" in text and "1 skipped, 2 resumed, 1 rerun, 1 kept failed" in text


def test_an_attempt_moved_aside_is_not_a_run_of_the_sweep(continued_sweep):
    attempt = continued_sweep / "vae-mlp-z4-b1_2" / "attempts" / "2026-11-28_11-02-10_failed"
    assert (attempt / ".hydra" / "overrides.yaml").is_file() and (attempt / "metrics.json").is_file()
    assert attempt not in find_runs(continued_sweep)
    assert len(report(continued_sweep).runs) == 6
    assert attempt.name not in read_rows(continued_sweep)


def test_a_sweep_that_ran_once_has_no_continued_columns(sweep):
    launch = {"started": "2026-11-28T10:48:57", "jobs": {p.name: "new" for p in sweep.iterdir()}}
    (sweep / "launches.json").write_text(json.dumps([launch]))
    report(sweep)
    assert not {"continued", "earlier_attempts"} & set(next(iter(read_rows(sweep).values())))
    text = (sweep / "report.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| run"))
    assert header.startswith("| run | status | model | model.latent_dim |") and "launched" not in text


def test_report_says_why_the_training_curves_are_missing(tmp_path, capsys):
    # 2 epochs of 5 batches, training values every 50 steps: Lightning never wrote one
    sweep = tmp_path / "multirun"
    for i, dim in enumerate((2, 10)):
        run = make_run(sweep, f"vae-mlp-z{dim}-b1_{i}", [f"model.latent_dim={dim}"], dim, completed(120.0, 10.0))
        (run / ".hydra" / "config.yaml").write_text(f"model:\n  latent_dim: {dim}\ntrainer:\n  log_every_n_steps: 50\n")
        log_validation(run, [125.0, 124.0])
    (sweep / "training_curves.png").write_bytes(b"an earlier report's")
    main([str(sweep)])
    why = "no run logged training scalars (train/loss, train/recon, train/kl, train/d_loss, train/g_loss): "
    why += (
        "Lightning writes them every trainer.log_every_n_steps=50 training steps, and the runs logged 10 steps at most"
    )
    assert f"training_curves.png not drawn: {why}" in capsys.readouterr().out
    assert f"- `training_curves.png`: {why}" in (sweep / "report.md").read_text()
    assert not (sweep / "training_curves.png").exists()
