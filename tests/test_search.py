"""Searches that survive: a killed Optuna search continued in its folder proposes the trials of the unbroken
search, prunes trailing trials, reruns failed ones, and a search that cannot succeed says so up front or ends
with an error."""

import base64
import contextlib
import os
import pickle
import signal
import subprocess
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
from optuna.trial import TrialState

from hydra_plugins.vae_sweepers.search import trial_overrides
from hydra_plugins.vae_sweepers.space import distribution, settings_problems
from hydra_plugins.vae_sweepers.study import RETRY_OF, SAMPLER, keep_sampler, restore_sampler
from tests.commands import PROJECT, fingerprint, start_train, train_py
from tests.conftest import TINY
from tests.tensorboard_events import load_events, visible_hparams
from vae.runs.record import read_record
from vae.utils.compose import CONF_DIR


def search_args(data: Path, sweep: Path, *extra: str) -> list[str]:
    """A 4-trial search (2 random trials, then TPE), pruned from its 2nd trial on; 3 epochs of 10 batches a
    trial, as max_steps with no epoch limit (max_epochs=-1)."""
    return [
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.sampler.n_startup_trials=2",  # TPE models the 3rd and 4th trials
        "hydra.sweeper.pruner.n_startup_trials=1",  # prune from the 2nd trial on, from the first epoch
        "hydra.sweeper.pruner.n_warmup_steps=0",
        "optimizer.lr=choice(0.001,0.05)",  # the command line's sweeps join the space: some trials trail by far
        f"data.root={data}",
        f"paths.root_dir={sweep.parent}",
        *TINY,
        "trainer.max_epochs=-1",
        "+trainer.max_steps=30",
        "trainer.limit_train_batches=10",
        "callbacks.every_n_epochs=0",
        f"hydra.sweep.dir={sweep}",
        *extra,
    ]


def study_of(sweep: Path) -> optuna.Study:
    return optuna.load_study(study_name="vae_mnist", storage=f"sqlite:///{sweep / 'optuna.db'}")


def trials(sweep: Path) -> list[tuple]:
    """Each trial's settings, state and value, in order."""
    return [(t.params, t.state, t.value) for t in study_of(sweep).trials]


@pytest.fixture(scope="module")
def unbroken_search(sweep_data, tmp_path_factory) -> Path:
    sweep = tmp_path_factory.mktemp("unbroken") / "search"
    done = train_py(*search_args(sweep_data, sweep))
    assert done.returncode == 0, done.stderr[-3000:]
    return sweep


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


@pytest.mark.slow
def test_a_killed_search_continues_with_the_unbroken_search_s_trials_and_prunes_trailing_ones(
    sweep_data, unbroken_search, tmp_path
):
    sweep, log = tmp_path / "search", tmp_path / "first.log"
    args = search_args(sweep_data, sweep)
    with log.open("w") as out:
        process = start_train(args, stdout=out, stderr=subprocess.STDOUT)
        third = _when_trial_starts(process, sweep, 2, log)
        assert process.wait() == -9
    finished = {folder: fingerprint(folder) for folder in sweep.glob("*_[01]")}
    assert len(finished) == 2 and not (sweep / "optimization_results.yaml").exists()

    # continued with fewer trials than the study holds: the trial left running is finished, no new one started
    lowered = train_py(*args, "hydra.sweeper.n_trials=2")
    assert lowered.returncode == 0, lowered.stderr[-3000:]
    assert [state for _, state, _ in trials(sweep)] == [state for _, state, _ in trials(unbroken_search)][:3]
    again = train_py(f"resume={sweep}")  # the last launch's overrides: n_trials=2, nothing left to run
    assert again.returncode == 0 and len(study_of(sweep).trials) == 3, again.stderr[-3000:]
    again = train_py(*args)  # to n_trials=4 in all
    assert again.returncode == 0, again.stderr[-3000:]

    # the same trials as the unbroken search: settings (the sampler continued its stream), states, values
    assert trials(sweep) == trials(unbroken_search)
    assert {folder: fingerprint(folder) for folder in finished} == finished
    assert len(list(sweep.glob("**/optimization_results.yaml"))) == 1
    assert third.is_dir() and read_record(third)["status"] in ("completed", "pruned")
    # the HPARAMS table opens on the searched keys (the command line's first), then the model
    searched = ["backbone.hidden_dims.0", "model", "model.beta", "model.latent_dim", "optimizer.lr"]
    assert all(visible_hparams(load_events(folder)) == searched for folder in finished)
    # pruned with no epoch limit: stopped after an epoch that trailed, before the last of its 3, and recorded so
    study = study_of(sweep)
    pruned = [t.number for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, [t.intermediate_values for t in study.trials]
    for number in pruned:
        (folder,) = sweep.glob(f"*_{number}")
        summary = read_record(folder)
        assert summary["status"] == "pruned" and "test/loss" not in summary["metrics"]
        assert max(study.trials[number].intermediate_values) < 2
    results_file = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results_file["trials"]["complete"] + results_file["trials"]["pruned"] == 4
    # a trial's value is its best checkpoint's val/elbo, as its run recorded it; the search maximizes it
    recorded = [
        s["best_metrics"]["val/elbo"] for s in map(read_record, sweep.glob("*_[0-9]")) if s["status"] == "completed"
    ]
    assert results_file["best_value"] == pytest.approx(max(recorded))
    assert set(results_file["best_params"]) == {
        "optimizer.lr", "model.beta", "model.latent_dim", "backbone.hidden_dims.0"
    }  # fmt: skip


def test_a_sampler_kept_in_its_study_proposes_after_a_kill_what_it_would_have_unbroken(tmp_path):
    """Asked in batches of two (n_jobs=2): the search killed while its second batch runs, its study loaded by
    a new process with a sampler built anew from its seed, proposes the third batch of the unbroken search."""
    space = {"x": optuna.distributions.FloatDistribution(-3, 3), "k": optuna.distributions.IntDistribution(1, 9)}

    def value(trial: optuna.trial.FrozenTrial) -> float:
        return (trial.params["x"] - 1) ** 2 + trial.params["k"]

    def search(name: str, kill_in_batch: int | None = None) -> optuna.Study:
        storage = optuna.storages.get_storage(f"sqlite:///{tmp_path / name}.db")
        sampler = optuna.samplers.TPESampler(seed=5, n_startup_trials=2)
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, load_if_exists=True)
        restore_sampler(study, storage)
        left = [optuna.trial.Trial(study, t._trial_id) for t in study.get_trials(states=(TrialState.RUNNING,))]
        while len(study.trials) < 8 or left:
            batch, left = left, []
            while len(batch) < 2:
                batch.append(study.ask(space))
                keep_sampler(study, storage)
            if len(study.trials) // 2 - 1 == kill_in_batch:
                return study  # the process dies: its trials stay RUNNING
            for trial in batch:
                study.tell(trial, value(study.trials[trial.number]))
        return study

    unbroken = search("unbroken")
    search("killed", kill_in_batch=2)
    continued = search("killed")
    assert [t.params for t in continued.trials] == [t.params for t in unbroken.trials]
    state = continued._storage.get_study_system_attrs(continued._study_id)[SAMPLER]
    assert isinstance(pickle.loads(base64.b64decode(state["sampler"])), optuna.samplers.TPESampler)


def documented_search_commands() -> list[list[str]]:
    """Every ``python train.py -m hparams_search=...`` line of the README, docs/sweeps.md and the search configs'
    headers."""
    texts = [(PROJECT / page).read_text() for page in ("README.md", "docs/sweeps.md")]
    texts += [path.read_text() for path in sorted((PROJECT / "conf" / "hparams_search").glob("*.yaml"))]
    commands = set()
    for text in texts:
        for line in text.splitlines():
            line = line.lstrip("# ").split("  #")[0].strip()
            if line.startswith("python train.py -m hparams_search="):
                commands.add(line.removeprefix("python train.py -m ").strip("`"))
    return [command.split() for command in sorted(commands)]


@contextlib.contextmanager
def sweeper_of(arguments: list[str], tmp_path: Path):
    """The search's sweeper as Hydra sets it up for ``arguments``, and the composed config."""
    overrides = [*arguments, f"hydra.sweep.dir={tmp_path}"]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        config = compose("train", overrides=overrides, return_hydra_config=True)
        sweeper = instantiate(config.hydra.sweeper)
        sweeper.config = config
        sweeper.hydra_context = HydraContext(GlobalHydra.instance().config_loader(), Callbacks())
        yield sweeper, config


@pytest.mark.parametrize("arguments", documented_search_commands(), ids=" ".join)
def test_every_documented_search_composes_its_trials(arguments, tmp_path):
    """The search space fits the config it searches: one trial's settings compose, as its job will."""
    assert len(documented_search_commands()) >= 3
    with sweeper_of(arguments, tmp_path) as (sweeper, config):
        task = [o for o in arguments if not o.startswith("hydra.")]  # what Hydra hands a sweeper
        fixed, space = sweeper.search_space(task)
        for seed in range(3):
            trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed)).ask(space)
            job = sweeper.hydra_context.config_loader.load_sweep_config(config, trial_overrides(fixed, trial))
            assert all(OmegaConf.select(job, key) == value for key, value in trial.params.items())


@pytest.mark.parametrize(
    "override, expected",
    [
        ("x=choice(5, 10, 20)", optuna.distributions.CategoricalDistribution([5, 10, 20])),
        ("x=interval(0.5, 2.0)", optuna.distributions.FloatDistribution(0.5, 2.0)),
        ("x=tag(log, interval(1e-4, 1e-2))", optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)),
        ("x=tag(int, interval(2, 8))", optuna.distributions.IntDistribution(2, 8)),
        ("x=range(2, 10, 2)", optuna.distributions.IntDistribution(2, 8, step=2)),
        # as Python's range and Hydra's grid: the end excluded, whole numbers or not
        ("x=range(0.5, 2.0, 0.5)", optuna.distributions.FloatDistribution(0.5, 1.5, step=0.5)),
        ("x=range(0.1, 0.5, 0.1)", optuna.distributions.FloatDistribution(0.1, 0.4, step=0.1)),
        ("x=range(10, 2, -2)", optuna.distributions.IntDistribution(4, 10, step=2)),
    ],
)
def test_search_space_overrides_become_optuna_distributions(override, expected):
    (parsed,) = OverridesParser.create().parse_overrides([override])
    assert distribution(parsed) == expected


def test_bad_search_settings_are_refused_together_before_anything_runs(sweep_data, tmp_path):
    sweep = tmp_path / "search"
    bad = ["hydra.sweeper.n_jobs=0", "hydra.sweeper.n_trials=-1", "hydra.sweeper.direction=up", "model.beta=range(2,2)"]
    refused = train_py(*search_args(sweep_data, sweep, *bad), timeout=120)
    assert refused.returncode == 1
    for message in [
        "hydra.sweeper.n_jobs=0: must be a whole number >= 1",
        "hydra.sweeper.n_trials=-1: must be a whole number >= 1",
        "hydra.sweeper.direction='up': must be one of minimize, maximize",
        "model.beta=range(2,2): the range holds no value",
    ]:
        assert message in refused.stderr, refused.stderr[-3000:]
    assert not sweep.exists()  # nothing written


def test_an_empty_search_space_or_a_search_without_its_metric_is_refused():
    assert settings_problems(20, 1, "maximize", "val/elbo", searched=2) == []
    (empty,) = settings_problems(20, 1, "maximize", "val/elbo", searched=0)
    assert empty.startswith("hydra.sweeper.params: the search space is empty")
    (unset,) = settings_problems(20, 1, "maximize", None, searched=2)
    assert unset.startswith("optimized_metric=null: a search needs the logged value it optimizes")


@pytest.mark.slow
def test_a_search_whose_trials_all_fail_ends_with_an_error_and_reruns_them_when_continued(sweep_data, tmp_path):
    sweep = tmp_path / "search"
    args = [a for a in search_args(sweep_data, sweep, "hydra.sweeper.n_trials=2") if not a.startswith("data.root")]
    args = [a for a in args if not a.startswith("hydra.sweeper.pruner.")] + ["hydra.sweeper.pruner=null"]
    failed = train_py(*args, f"data.root={tmp_path / 'not_mounted'}")  # the data is elsewhere: every trial fails
    assert failed.returncode == 1 and "No trial of the search completed" in failed.stderr, failed.stderr[-3000:]
    assert [state for _, state, _ in trials(sweep)] == [TrialState.FAIL] * 2
    assert [read_record(f)["status"] for f in sorted(sweep.glob("*_[0-9]"))] == ["failed"] * 2

    kept = train_py(*args, f"data.root={sweep_data}", "hydra.sweeper.failed=keep")
    assert kept.returncode == 1 and len(study_of(sweep).trials) == 2  # nothing run again
    again = train_py(*args, f"data.root={sweep_data}")  # failed: rerun (the default)
    assert again.returncode == 0, again.stderr[-3000:]
    study = study_of(sweep)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2 + [TrialState.COMPLETE] * 2
    assert [t.user_attrs.get(RETRY_OF) for t in study.trials[2:]] == [0, 1]  # each failed trial run again
    assert [t.params for t in study.trials[2:]] == [t.params for t in study.trials[:2]]
    statuses = {f.name.rsplit("_", 1)[1]: read_record(f)["status"] for f in sweep.glob("*_[0-9]")}
    assert statuses == {"0": "failed", "1": "failed", "2": "completed", "3": "completed"}  # folders and study agree


@pytest.mark.slow
def test_a_search_stops_at_the_first_trial_that_did_not_log_its_metric(sweep_data, tmp_path):
    sweep = tmp_path / "search"
    stopped = train_py(*search_args(sweep_data, sweep, "optimized_metric=val/nope"))
    assert stopped.returncode == 1
    assert "optimized_metric='val/nope': vae.models.VAE does not log it; it logged:" in stopped.stderr
    assert [state for _, state, _ in trials(sweep)] == [TrialState.FAIL]  # not one trial more
    (folder,) = sweep.glob("*_0")
    assert read_record(folder)["status"] == "failed" and "val/elbo" in read_record(folder)["metrics"]
