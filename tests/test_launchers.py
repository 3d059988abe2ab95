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


def slurm_launcher(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name="train", return_hydra_config=True, overrides=["hydra/launcher=slurm", *overrides])
    return cfg.hydra.launcher


@pytest.mark.parametrize(
    "overrides, gpus, tasks, nodes, mem_gb",
    [
        (["trainer=cpu"], 0, 1, 1, 4),  # no GPU asked of a CPU run
        (["trainer=gpu"], 1, 1, 1, 4),
        (["trainer=gpu", "trainer.devices=2"], 2, 2, 1, 8),  # Lightning runs 2 devices as DDP: a task each
        (["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"], 0, 2, 1, 8),
        (["trainer=ddp", "trainer.accelerator=gpu", "trainer.devices=4", "trainer.num_nodes=2"], 4, 4, 2, 16),
        (["trainer=gpu", "trainer.devices=2", "hydra.launcher.gpus_per_node=8"], 8, 2, 1, 8),  # set: it wins
    ],
)
def test_slurm_resources_follow_the_trainer(overrides, gpus, tasks, nodes, mem_gb):
    launcher = slurm_launcher("hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=30", *overrides)
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.timeout_min, launcher.cpus_per_task) == ("gpu", 30, 2)
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.nodes, launcher.mem_gb) == (
        gpus, tasks, nodes, mem_gb
    )  # fmt: skip


def test_an_auto_accelerator_or_a_request_no_node_holds_is_refused_with_the_keys(monkeypatch):
    from vae.cluster import slurm

    monkeypatch.setattr(slurm, "partition", lambda name: None)  # no cluster answers on this machine
    (auto,) = slurm.request_problems({"partition": None}, "auto")
    assert auto.startswith("trainer.accelerator=auto under hydra/launcher=slurm") and "trainer=cpu" in auto
    assert slurm.request_problems({"partition": None}, "cpu") == []  # sbatch will tell
    node = slurm.Partition("gpu", cpus=32, mem_mb=256_000, gpus=4, nodes=2)
    monkeypatch.setattr(slurm, "partition", lambda name: node)
    asked = {"partition": "gpu", "cpus_per_task": 8, "tasks_per_node": 8, "mem_gb": 64, "gpus_per_node": 8, "nodes": 4}
    assert slurm.request_problems(asked, "gpu") == [
        "hydra.launcher.cpus_per_task=8 x tasks_per_node=8 asks 64 CPUs of a node; the most a node of partition "
        "gpu offers is 32",
        "hydra.launcher.gpus_per_node=8 asks 8 GPUs of a node; the most a node of partition gpu offers is 4",
        "hydra.launcher.nodes=4: partition gpu has 2 node(s)",
    ]
    assert slurm.gpus_per_node("auto", 2, "gpu") == 2  # auto: the partition holds GPUs


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
