"""Sweeps beyond the basic launcher: submitit (the SLURM path, run locally), the SLURM config. The Optuna
search is tested in test_sweeps.py."""

import json

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tests.conftest import TINY
from tests.test_train import run_train
from vae.config.validation import ABSENT
from vae.utils.compose import CONF_DIR


@pytest.mark.slow
def test_submitit_sweep_runs_each_job_as_its_own_process(mnist_root, tmp_path):
    sweep = tmp_path / "sweep"
    run_train(
        ["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "model.latent_dim=2,3"]
        + [f"data.root={mnist_root}", f"paths.root_dir={tmp_path}", *TINY, f"hydra.sweep.dir={sweep}"]
    )
    summaries = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert [(s["run_name"], s["status"]) for s in summaries] == [
        ("vae-mlp-z2-b1", "completed"),
        ("vae-mlp-z3-b1", "completed"),
    ]
    jobs = [p for p in (sweep / ".submitit").iterdir() if p.name.isdigit()]  # one folder per submitted job
    assert len(jobs) == 2 and all(list(job.glob("*_result.pkl")) for job in jobs)
    # TensorBoard names event files after the process that writes them: two jobs, two processes
    pids = {p.name.rsplit(".", 2)[1] for p in sweep.glob("*/events.out.tfevents.*")}  # ...<host>.<pid>.<n>
    assert len(pids) == 2


def test_slurm_launcher_config_turns_a_sweep_into_slurm_jobs():
    overrides = ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=30"]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name="train", return_hydra_config=True, overrides=overrides)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.timeout_min, launcher.gpus_per_node, launcher.tasks_per_node) == (
        "gpu",
        30,
        1,
        1,
    )


@pytest.mark.parametrize(
    "search, model, metric, direction",
    [("optuna", "vae.models.VAE", "val/elbo", "maximize"), ("optuna_gan", "vae.models.GAN", "val/fid", "minimize")],
)
def test_each_search_space_names_keys_of_the_config_it_searches(search, model, metric, direction):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name="train", return_hydra_config=True, overrides=[f"hparams_search={search}"])
    assert (cfg.model._target_, cfg.optimized_metric, cfg.hydra.sweeper.direction) == (model, metric, direction)
    # a misspelt key would make Optuna vary a setting nothing reads
    missing = [key for key in cfg.hydra.sweeper.params if OmegaConf.select(cfg, key, default=ABSENT) is ABSENT]
    assert not missing
