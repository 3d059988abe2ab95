"""Sweeps that survive: a sweep run again into its folder skips what finished, resumes what was killed and
refuses a folder of other settings; an Optuna search keeps its study in SQLite and prunes trailing trials."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra._internal.callbacks import Callbacks
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import HydraContext
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hydra_plugins.vae_sweepers.search import distribution, trial_overrides
from tests.commands import PROJECT, kill_after_first_checkpoint, results, start_train
from tests.conftest import TINY, compose_train
from tests.idx import write_mnist
from tests.tensorboard_events import load_events, visible_hparams
from vae.config import ConfigError
from vae.sweep.folders import move_aside, recorded
from vae.training import train
from vae.utils.compose import CONF_DIR

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
    return subprocess.run([sys.executable, "train.py", *args], cwd=PROJECT, capture_output=True, text=True)


def folders(sweep: Path, runs: int = len(LATENT_DIMS)) -> list[Path]:
    return [sweep / f"vae-mlp-z{z}-b1_{job}" for job, z in enumerate(LATENT_DIMS[:runs])]


def fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file of a run folder: its hash and modification time."""
    return {
        str(path.relative_to(folder)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def one_lineage(folder: Path) -> list[int]:
    """The steps of train/loss as TensorBoard reads the folder back; each step once."""
    steps = [event.step for event in load_events(folder).Scalars("train/loss")]
    assert steps == sorted(set(steps)), f"{folder.name}: doubled or out-of-order steps {steps}"
    return steps


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_mnist(root, n_train=400, n_test=40)
    return root


@pytest.fixture(scope="module")
def unbroken(data, tmp_path_factory) -> Path:
    """The 6-run sweep, never interrupted: what every continued sweep must end like."""
    sweep = tmp_path_factory.mktemp("unbroken") / "sweep"
    done = run(sweep_args(data, sweep))
    assert done.returncode == 0, done.stderr[-3000:]
    return sweep


def kill_during(process: subprocess.Popen, folder: Path, log: Path) -> None:
    kill_after_first_checkpoint(process, folder, log, epoch=0)  # while its second, last epoch trains
    assert process.wait() == -9


@pytest.mark.slow
def test_a_killed_sweep_run_again_skips_finished_runs_and_resumes_the_killed_one(data, unbroken, tmp_path):
    sweep, log = tmp_path / "sweep", tmp_path / "first.log"
    with log.open("w") as out:
        process = start_train(sweep_args(data, sweep), stdout=out, stderr=subprocess.STDOUT)
        kill_during(process, folders(sweep)[3], log)  # while the 4th run trains its last epoch
    finished = {folder: fingerprint(folder) for folder in folders(sweep)[:3]}
    assert json.loads((folders(sweep)[3] / "metrics.json").read_text())["status"] == "running"
    assert not folders(sweep)[4].exists()

    again = run(sweep_args(data, sweep))  # the very same command
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
def test_a_killed_parallel_sweep_continues_with_the_parallel_launcher(data, unbroken, tmp_path):
    sweep, log = tmp_path / "sweep", tmp_path / "first.log"
    parallel = ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]
    with log.open("w") as out:
        process = start_train(sweep_args(data, sweep, *parallel, runs=4), stdout=out, stderr=subprocess.STDOUT)
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
def test_a_sweep_run_again_with_other_settings_is_refused_and_changes_nothing(data, unbroken, tmp_path):
    before = {folder: fingerprint(folder) for folder in folders(unbroken)}
    record = (unbroken / "multirun.yaml").read_text()
    refused = run(sweep_args(data, unbroken, "trainer.limit_train_batches=5"))
    assert refused.returncode == 1
    for folder in folders(unbroken):
        message = f"{folder} holds a run of other settings (trainer.limit_train_batches: 10 there, 5 now)"
        assert message in refused.stderr
    assert {folder: fingerprint(folder) for folder in folders(unbroken)} == before
    assert (unbroken / "multirun.yaml").read_text() == record  # resume= still repeats the sweep's own settings


@pytest.mark.slow
def test_a_killed_search_continues_its_sqlite_study_to_n_trials_and_prunes_trailing_trials(data, tmp_path):
    sweep, log = tmp_path / "search", tmp_path / "first.log"
    args = [
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.pruner.n_startup_trials=1",  # prune from the 2nd trial on, from the first epoch
        "hydra.sweeper.pruner.n_warmup_steps=0",
        "optimizer.lr=choice(0.001,0.05)",  # the command line's sweeps join the space: some trials trail by far
        f"data.root={data}",
        f"paths.root_dir={tmp_path}",
        *TINY,
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=10",
        "callbacks.every_n_epochs=0",
        f"hydra.sweep.dir={sweep}",
    ]
    with log.open("w") as out:
        process = start_train(args, stdout=out, stderr=subprocess.STDOUT)
        third = _when_trial_starts(process, sweep, 2, log)
        assert process.wait() == -9
    finished = {folder: fingerprint(folder) for folder in sweep.glob("*_[01]")}
    assert len(finished) == 2 and not (sweep / "optimization_results.yaml").exists()

    again = run(["resume=" + str(sweep)])
    assert again.returncode == 0, again.stderr[-3000:]
    study = optuna.load_study(study_name="vae_mnist", storage=f"sqlite:///{sweep / 'optuna.db'}")
    states = [trial.state for trial in study.trials]
    finished_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert len(states) == 4 and all(state in finished_states for state in states)
    assert {folder: fingerprint(folder) for folder in finished} == finished
    assert len(list(sweep.glob("**/optimization_results.yaml"))) == 1
    assert third.is_dir() and (third / "metrics.json").is_file()
    # the HPARAMS table opens on the searched keys (the command line's first), then the model
    searched = ["backbone.hidden_dims.0", "model", "model.beta", "model.latent_dim", "optimizer.lr"]
    assert all(visible_hparams(load_events(folder)) == searched for folder in finished)
    # pruned: stopped after an epoch that trailed, before its last, and recorded so
    pruned = [t.number for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, [t.intermediate_values for t in study.trials]
    for number in pruned:
        (folder,) = sweep.glob(f"*_{number}")
        summary = json.loads((folder / "metrics.json").read_text())
        assert summary["status"] == "pruned" and "test/loss" not in summary["metrics"]
        assert max(study.trials[number].intermediate_values) < 2  # stopped before the last of 3 epochs
    results_file = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results_file["trials"]["complete"] + results_file["trials"]["pruned"] == 4
    # a trial's value is its best checkpoint's val/elbo, as its run recorded it; the search maximizes it
    summaries = [json.loads(path.read_text()) for path in sweep.glob("*/metrics.json")]
    recorded = [s["best_metrics"]["val/elbo"] for s in summaries if s["status"] == "completed"]
    assert results_file["best_value"] == pytest.approx(max(recorded))
    assert set(results_file["best_params"]) == {
        "optimizer.lr", "model.beta", "model.latent_dim", "backbone.hidden_dims.0"
    }  # fmt: skip


def _when_trial_starts(process: subprocess.Popen, sweep: Path, number: int, log: Path) -> Path:
    """SIGKILLs the search as soon as trial ``number`` has recorded that it runs; returns its folder."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the search ended before it could be killed:\n{log.read_text()[-3000:]}"
        for summary in sweep.glob(f"*_{number}/metrics.json"):
            os.killpg(process.pid, signal.SIGKILL)
            return summary.parent
        time.sleep(0.02)
    raise AssertionError(f"trial {number} never started")


def documented_search_commands() -> list[list[str]]:
    """Every ``python train.py -m hparams_search=...`` line of the README and the search configs' headers."""
    texts = [(PROJECT / "README.md").read_text()]
    texts += [path.read_text() for path in sorted((PROJECT / "conf" / "hparams_search").glob("*.yaml"))]
    commands = set()
    for text in texts:
        for line in text.splitlines():
            line = line.lstrip("# ").split("  #")[0].strip()
            if line.startswith("python train.py -m hparams_search="):
                commands.add(line.removeprefix("python train.py -m ").strip("`"))
    return [command.split() for command in sorted(commands)]


@pytest.mark.parametrize("arguments", documented_search_commands(), ids=" ".join)
def test_every_documented_search_composes_its_trials(arguments, tmp_path):
    """The search space fits the config it searches: one trial's settings compose, as its job will."""

    assert len(documented_search_commands()) >= 3
    overrides = [*arguments, f"hydra.sweep.dir={tmp_path}"]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        config = compose("train", overrides=overrides, return_hydra_config=True)
        sweeper = instantiate(config.hydra.sweeper)
        sweeper.config = config
        sweeper.hydra_context = HydraContext(GlobalHydra.instance().config_loader(), Callbacks())
        task = [o for o in arguments if not o.startswith("hydra.")]  # what Hydra hands a sweeper
        fixed, space = sweeper.search_space(task)
        for seed in range(3):
            trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed)).ask(space)
            job = sweeper.hydra_context.config_loader.load_sweep_config(config, trial_overrides(fixed, trial))
            assert all(OmegaConf.select(job, key) == value for key, value in trial.params.items())


def test_a_folder_s_record_decides_what_a_continued_sweep_does(tmp_path):
    config = {"model": {"latent_dim": 2}, "paths": {"output_dir": str(tmp_path)}, "ckpt_path": None}

    def record(status: str, **changes) -> None:
        (tmp_path / "metrics.json").write_text(json.dumps({"status": status, "config": {**config, **changes}}))

    assert recorded(tmp_path, config).action == "new"
    (tmp_path / ".hydra").mkdir()
    assert recorded(tmp_path, config).action == "new"  # Hydra's record alone: the job never started
    for status, action in [("completed", "skip"), ("pruned", "skip"), ("failed", "rerun"), ("running", "rerun")]:
        record(status)
        assert recorded(tmp_path, config).action == action, status
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    for status in ("running", "interrupted"):
        record(status)
        assert recorded(tmp_path, config).action == "resume"
    # where and how it was started are not what it computes: a moved folder, a continuation
    record("completed", paths={"output_dir": "/old/place"}, ckpt_path="last")
    assert recorded(tmp_path, config).differences == []
    record("completed", model={"latent_dim": 3}, trainer={"max_epochs": 2})
    assert recorded(tmp_path, config).differences == ["model.latent_dim", "trainer.max_epochs"]
    (tmp_path / "metrics.json").unlink()
    assert recorded(tmp_path, config).status == "unrecorded"  # files without a record: moved aside, run again


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


@pytest.mark.parametrize(
    "override, expected",
    [
        ("x=choice(5, 10, 20)", optuna.distributions.CategoricalDistribution([5, 10, 20])),
        ("x=interval(0.5, 2.0)", optuna.distributions.FloatDistribution(0.5, 2.0)),
        ("x=tag(log, interval(1e-4, 1e-2))", optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)),
        ("x=tag(int, interval(2, 8))", optuna.distributions.IntDistribution(2, 8)),
        ("x=range(2, 10, 2)", optuna.distributions.IntDistribution(2, 8, step=2)),
    ],
)
def test_search_space_overrides_become_optuna_distributions(override, expected):
    (parsed,) = OverridesParser.create().parse_overrides([override])
    assert distribution(parsed) == expected


@pytest.mark.slow
def test_failed_jobs_run_again_with_their_files_moved_aside_or_stay_failed_when_kept(data, tmp_path):
    sweep = tmp_path / "sweep"
    grid = ["-m", "model.latent_dim=2,3", f"paths.root_dir={tmp_path}", *TINY, "callbacks.every_n_epochs=0"]
    grid.append(f"hydra.sweep.dir={sweep}")
    first = run([*grid, f"data.root={tmp_path / 'not_mounted'}"])  # the data is elsewhere: both jobs fail
    assert first.returncode != 0
    runs = sorted(sweep.glob("vae-*"))
    assert [json.loads((r / "metrics.json").read_text())["status"] for r in runs] == ["failed", "failed"]

    kept = run([*grid, f"data.root={data}", "hydra.sweeper.failed=keep"])
    assert kept.returncode != 0 and "kept as failed" in kept.stderr
    assert not any((r / "attempts").exists() for r in runs)

    again = run([*grid, f"data.root={data}"])  # where the data lives is not a setting of the runs
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
