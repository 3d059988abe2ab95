"""Sweeps that survive: a sweep run again into its folder skips what finished, resumes what was killed, reruns
what failed and refuses a folder of other settings (searches: tests/test_search.py)."""

import json
import subprocess
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from tests.commands import fingerprint, kill_after_first_checkpoint, results, start_train, train_py
from tests.conftest import TINY, compose_train
from tests.tensorboard_events import load_events
from vae.config import ConfigError
from vae.runs.continuation import decide, move_aside
from vae.training import train

LATENT_DIMS = (2, 3, 4, 5, 6, 7)


def sweep_args(data: Path, sweep: Path, *extra: str, runs: int = len(LATENT_DIMS)) -> list[str]:
    """A grid of ``runs`` runs (6), 2 epochs each: long enough to be killed in the middle of a run."""
    return [
        "-m",
        f"model.latent_dim={','.join(map(str, LATENT_DIMS[:runs]))}",
        f"data.root={data}",
        f"paths.root_dir={sweep.parent}",
        *TINY,
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=10",
        "callbacks.every_n_epochs=0",  # pictures at the end only: these tests are about runs, not pictures
        f"hydra.sweep.dir={sweep}",
        *extra,
    ]


def run(args: list[str]) -> subprocess.CompletedProcess:
    return train_py(*args)


def folders(sweep: Path, runs: int = len(LATENT_DIMS)) -> list[Path]:
    return [sweep / f"vae-mlp-z{z}-b1_{job}" for job, z in enumerate(LATENT_DIMS[:runs])]


def one_lineage(folder: Path) -> list[int]:
    """The steps of train/loss as TensorBoard reads the folder back; each step once."""
    steps = [event.step for event in load_events(folder).Scalars("train/loss")]
    assert steps == sorted(set(steps)), f"{folder.name}: doubled or out-of-order steps {steps}"
    return steps


@pytest.fixture(scope="module")
def unbroken(sweep_data, tmp_path_factory) -> Path:
    """The 6-run sweep, never interrupted: what every continued sweep must end like."""
    sweep = tmp_path_factory.mktemp("unbroken") / "sweep"
    done = run(sweep_args(sweep_data, sweep))
    assert done.returncode == 0, done.stderr[-3000:]
    return sweep


def kill_during(process: subprocess.Popen, folder: Path, log: Path) -> None:
    kill_after_first_checkpoint(process, folder, log, epoch=0)  # while its second, last epoch trains
    assert process.wait() == -9


@pytest.mark.slow
def test_a_killed_sweep_run_again_skips_finished_runs_and_resumes_the_killed_one(sweep_data, unbroken, tmp_path):
    sweep, log = tmp_path / "sweep", tmp_path / "first.log"
    with log.open("w") as out:
        process = start_train(sweep_args(sweep_data, sweep), stdout=out, stderr=subprocess.STDOUT)
        kill_during(process, folders(sweep)[3], log)  # while the 4th run trains its last epoch
    finished = {folder: fingerprint(folder) for folder in folders(sweep)[:3]}
    assert json.loads((folders(sweep)[3] / "metrics.json").read_text())["status"] == "running"
    assert not folders(sweep)[4].exists()

    again = run(sweep_args(sweep_data, sweep))  # the very same command
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(fingerprint(folder) == files for folder, files in finished.items())  # not a byte or mtime changed
    output = again.stdout + again.stderr
    assert f"Restoring states from the checkpoint path at {folders(sweep)[3] / 'checkpoints' / 'last.ckpt'}" in output
    resumed = json.loads((folders(sweep)[3] / "metrics.json").read_text())
    assert [entry["epoch"] for entry in resumed["resumed_from"]] == [0]
    launch = json.loads((sweep / "launches.json").read_text())[-1]["jobs"]
    assert list(launch.values()) == ["skipped"] * 3 + ["resumed", "new", "new"]
    for ours, reference in zip(folders(sweep), folders(unbroken), strict=True):
        assert results(ours) == results(reference), ours.name  # the same numbers, to the last bit
        assert one_lineage(ours) == one_lineage(reference)
    assert not list(sweep.glob("*/checkpoints/*-v1.ckpt"))  # no second best checkpoint beside the first


@pytest.mark.slow
def test_a_killed_parallel_sweep_continues_with_the_parallel_launcher(sweep_data, unbroken, tmp_path):
    sweep, log = tmp_path / "sweep", tmp_path / "first.log"
    parallel = ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]
    with log.open("w") as out:
        process = start_train(sweep_args(sweep_data, sweep, *parallel, runs=4), stdout=out, stderr=subprocess.STDOUT)
        kill_during(process, folders(sweep)[3], log)  # jobs 3 and 4 (numbers 2 and 3) run side by side
    finished = {f: fingerprint(f) for f in folders(sweep, 4) if (f / "metrics.json").is_file() and _completed(f)}
    assert len(finished) >= 2

    again = run(["resume=" + str(sweep)])  # the short form: the sweep's own overrides, launcher included
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(fingerprint(folder) == files for folder, files in finished.items())
    for ours, reference in zip(folders(sweep, 4), folders(unbroken, 4), strict=True):
        # the launcher gives each job cores // n_jobs threads: sums may round differently than in one process
        assert results(ours) == pytest.approx(results(reference), rel=1e-4), ours.name
        assert one_lineage(ours) == one_lineage(reference)
    assert "resumed" in json.loads((sweep / "launches.json").read_text())[-1]["jobs"].values()


def _completed(folder: Path) -> bool:
    return json.loads((folder / "metrics.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_a_sweep_run_again_with_other_settings_is_refused_and_changes_nothing(sweep_data, unbroken, tmp_path):
    before = {folder: fingerprint(folder) for folder in folders(unbroken)}
    record = (unbroken / "multirun.yaml").read_text()
    refused = run(sweep_args(sweep_data, unbroken, "trainer.limit_train_batches=5"))
    assert refused.returncode == 1
    for folder in folders(unbroken):
        message = f"{folder} holds a run of other settings (trainer.limit_train_batches: 10 there, 5 now)"
        assert message in refused.stderr
    assert {folder: fingerprint(folder) for folder in folders(unbroken)} == before
    assert (unbroken / "multirun.yaml").read_text() == record  # resume= still repeats the sweep's own settings


def test_a_folder_s_record_decides_what_a_continued_sweep_does(tmp_path):
    config = {"model": {"latent_dim": 2}, "paths": {"output_dir": str(tmp_path)}, "ckpt_path": None}

    def record(status: str, **changes) -> None:
        (tmp_path / "metrics.json").write_text(json.dumps({"status": status, "config": {**config, **changes}}))

    assert decide(tmp_path, config).action == "new"
    (tmp_path / ".hydra").mkdir()
    assert decide(tmp_path, config).action == "new"  # Hydra's record alone: the job never started
    for status, action in [("completed", "skip"), ("pruned", "skip"), ("failed", "rerun"), ("running", "rerun")]:
        record(status)
        assert decide(tmp_path, config).action == action, status
    record("failed")
    assert decide(tmp_path, config, failed="keep").action == "keep"
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    for status in ("running", "interrupted"):
        record(status)
        assert decide(tmp_path, config).action == "resume"
    # where and how it was started are not what it computes: a moved folder, a continuation
    record("completed", paths={"output_dir": "/old/place"}, ckpt_path="last")
    assert decide(tmp_path, config).state.differences == []
    record("completed", model={"latent_dim": 3}, trainer={"max_epochs": 2})
    decision = decide(tmp_path, config)
    assert decision.action == "other settings" and decision.state.differences == [
        "model.latent_dim",
        "trainer.max_epochs",
    ]
    assert decide(tmp_path, config, checkpoint="last").action == "resume"  # continued by hand: the user's call
    (tmp_path / "metrics.json").unlink()
    assert decide(tmp_path, config).state.status == "unrecorded"  # files without a record: moved aside, run again


def test_moving_an_attempt_aside_keeps_every_file(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_text("weights")
    (tmp_path / "metrics.json").write_text("{}")
    (tmp_path / "train.log").write_text("log")
    first = move_aside(tmp_path, "failed", keep=("train.log",))
    (tmp_path / "metrics.json").write_text("{}")
    second = move_aside(tmp_path, "failed")  # within the same second: its own folder
    assert first != second and first.parent == second.parent == tmp_path / "attempts"
    assert (first / "checkpoints" / "last.ckpt").read_text() == "weights" and (second / "train.log").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attempts"]


@pytest.mark.slow
def test_failed_jobs_run_again_with_their_files_moved_aside_or_stay_failed_when_kept(sweep_data, tmp_path):
    sweep = tmp_path / "sweep"
    grid = ["-m", "model.latent_dim=2,3", f"paths.root_dir={tmp_path}", *TINY, "callbacks.every_n_epochs=0"]
    grid.append(f"hydra.sweep.dir={sweep}")
    first = run([*grid, f"data.root={tmp_path / 'not_mounted'}"])  # the data is elsewhere: both jobs fail
    assert first.returncode != 0
    runs = sorted(sweep.glob("vae-*"))
    assert [json.loads((r / "metrics.json").read_text())["status"] for r in runs] == ["failed", "failed"]

    kept = run([*grid, f"data.root={sweep_data}", "hydra.sweeper.failed=keep"])
    assert kept.returncode != 0 and "kept as failed" in kept.stderr
    assert not any((r / "attempts").exists() for r in runs)

    again = run([*grid, f"data.root={sweep_data}"])  # where the data lives is not a setting of the runs
    assert again.returncode == 0, again.stderr[-3000:]
    for folder in runs:
        assert json.loads((folder / "metrics.json").read_text())["status"] == "completed"
        (attempt,) = (folder / "attempts").iterdir()
        assert attempt.name.endswith("_failed")
        assert json.loads((attempt / "metrics.json").read_text())["status"] == "failed"
        assert (attempt / ".hydra" / "overrides.yaml").is_file() and (attempt / "train.log").is_file()
        one_lineage(folder)  # the failed attempt's events went with it
    launches = json.loads((sweep / "launches.json").read_text())
    assert [list(launch["jobs"].values()) for launch in launches] == [
        ["new", "new"],
        ["kept failed", "kept failed"],
        ["rerun", "rerun"],
    ]


def test_a_requeued_job_continues_its_folder_itself(mnist_root, tmp_path):
    """A job a scheduler starts again (submitit's requeue: the same overrides, the same folder) without the
    sweeper: train() skips it finished, resumes it killed, and refuses a folder of other settings."""

    def job(*overrides: str):
        cfg = compose_train(["hydra.mode=MULTIRUN", "optimized_metric=val/elbo", *overrides], tmp_path, mnist_root)
        try:
            return train(cfg)
        finally:
            GlobalHydra.instance().clear()

    value = job()
    summary = tmp_path / "metrics.json"
    files = fingerprint(tmp_path)
    assert job() == value and fingerprint(tmp_path) == files  # finished: its value, nothing rewritten
    killed = json.loads(summary.read_text()) | {"status": "running"}  # as a SIGKILL leaves it
    summary.write_text(json.dumps(killed))
    assert job() == value  # resumed from last.ckpt, after its last epoch: it tests again
    assert [entry["epoch"] for entry in json.loads(summary.read_text())["resumed_from"]] == [0]
    with pytest.raises(ConfigError, match=r"holds a run of other settings \(model.latent_dim: 20 there, 3 now"):
        job("model.latent_dim=3")
