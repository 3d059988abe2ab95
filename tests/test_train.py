"""train.py through Hydra: composed configs, the run folder it leaves, multirun and DDP."""

import csv
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import torch
from lightning.pytorch.callbacks import Timer
from omegaconf import OmegaConf

from tests import prestarted
from tests.commands import train_py
from tests.conftest import TINY, compose_train
from tests.idx import write_mnist
from tests.tensorboard_events import hparams_entry, load_events, visible_hparams
from vae.likelihoods import Gaussian
from vae.nets import ConvEncoder
from vae.training import build, train
from vae.utils import HPARAM_METRICS, load_model

PROJECT = Path(__file__).resolve().parents[1]


def test_train_writes_metrics_checkpoints_and_hparams(make_cfg, tmp_path):
    returned = train(make_cfg("model.latent_dim=4", "optimized_metric=val/elbo"))
    summary = json.loads((tmp_path / "metrics.json").read_text())

    assert summary["status"] == "completed"
    assert summary["run_name"] == "vae-mlp-z4-b1"
    metrics = summary["metrics"]
    for stage in ("val", "test"):
        assert {f"{stage}/loss", f"{stage}/recon", f"{stage}/kl", f"{stage}/elbo"} <= set(metrics)
    assert not any(name.startswith("train/") for name in metrics)  # per-batch values, not final metrics
    assert returned == metrics["val/elbo"]  # the metric a sweeper optimizes
    assert metrics["test/loss"] == pytest.approx(metrics["test/recon"] + metrics["test/kl"], rel=1e-5)
    assert summary["n_params"] == sum(
        p.numel() for p in hydra.utils.instantiate(summary["config"]["model"], img_shape=(1, 28, 28)).parameters()
    )
    assert summary["config"]["model"]["latent_dim"] == 4  # the resolved config travels with the results
    assert "${" not in json.dumps(summary["config"])

    checkpoint = torch.load(summary["best_checkpoint"], weights_only=True)  # plain data only
    assert checkpoint["hyper_parameters"]["latent_dim"] == 4
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()

    params, metric_names = hparams_entry(load_events(tmp_path))
    assert metric_names == list(HPARAM_METRICS)
    assert params["model"] == "vae" and params["backbone"] == "mlp" and params["likelihood"] == "bernoulli"
    assert params["model.latent_dim"] == 4 and params["optimizer"] == "adam" and params["optimizer.lr"] == 1e-3
    assert params["n_params"] == summary["n_params"]
    assert params["data.val_size"] == 40  # an overridden key is reported too


@pytest.mark.parametrize("model", ["vae", "iwae", "ae"])
@pytest.mark.parametrize("backbone", ["mlp", "conv"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_every_group_option_composes_and_builds(make_cfg, model, backbone, likelihood):
    cfg = make_cfg(f"model={model}", f"backbone={backbone}", f"likelihood={likelihood}")
    datamodule = hydra.utils.instantiate(cfg.data)
    net = hydra.utils.instantiate(cfg.model, img_shape=datamodule.img_shape, _convert_="all")
    assert type(net).__name__ == {"vae": "VAE", "iwae": "IWAE", "ae": "AutoEncoder"}[model]
    assert net.likelihood.name == likelihood
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("scheduler", [None, "plateau", "cosine"])
def test_every_optimizer_and_scheduler_builds(make_cfg, optimizer, scheduler):
    cfg = make_cfg(f"optimizer={optimizer}", *([f"scheduler={scheduler}"] if scheduler else []))
    net = hydra.utils.instantiate(cfg.model, img_shape=(1, 28, 28), _convert_="all")
    configured = net.configure_optimizers()
    assert type(configured if scheduler is None else configured["optimizer"]).__name__.lower() == optimizer


@pytest.mark.parametrize(
    ("trainer", "expected"),
    [("default", ("auto", 1, None)), ("cpu", ("cpu", 1, None)), ("gpu", ("gpu", 1, None)), ("ddp", ("auto", 2, "ddp"))],
)
def test_trainer_options_compose(mnist_root, tmp_path, trainer, expected):
    cfg = compose_train([f"trainer={trainer}"], tmp_path, mnist_root, base=[])
    assert (cfg.trainer.accelerator, cfg.trainer.devices, cfg.trainer.get("strategy")) == expected
    assert cfg.trainer.max_epochs == 10 and cfg.trainer.precision == "32-true"
    cfg = compose_train([f"trainer={trainer}", "trainer.precision=bf16-mixed"], tmp_path, mnist_root, base=[])
    assert cfg.trainer.precision == "bf16-mixed"


def test_the_gan_s_config_names_the_ddp_it_needs_and_trainer_ddp_takes_it(mnist_root, tmp_path):
    # each of its alternating backward passes leaves the other network without gradients, which plain
    # DDP refuses (a GAN under DDP runs in tests/test_matrix.py: the pair model=gan, processes=2 is covered)
    gan = compose_train(["model=gan", "trainer=ddp"], tmp_path, mnist_root, base=[])
    assert gan.trainer.strategy == "ddp_find_unused_parameters_true"
    assert compose_train(["trainer=ddp"], tmp_path, mnist_root, base=[]).trainer.strategy == "ddp"


@pytest.mark.parametrize(("model", "monitor"), [("vae", "val/loss"), ("ae", "val/loss"), ("gan", "val/fid")])
def test_the_model_config_says_what_ranks_checkpoints_and_the_callbacks_read_it(make_cfg, model, monitor):
    cfg = make_cfg(f"model={model}", "callbacks=[default,early_stopping]")
    assert cfg.model.monitor == monitor  # in the run's saved config, resolved
    callbacks = cfg.callbacks
    assert callbacks.model_checkpoint.monitor == callbacks.early_stopping.monitor == monitor
    if model != "gan":  # the plateau scheduler steps on the model's monitor too
        configured = hydra.utils.instantiate(
            make_cfg(f"model={model}", "scheduler=plateau").model, img_shape=(1, 28, 28)
        )
        assert configured.configure_optimizers()["lr_scheduler"]["monitor"] == monitor


@pytest.mark.parametrize("debug", ["fdr", "limit", "overfit"])
def test_debug_configs_run(make_cfg, tmp_path, debug):
    overrides = [f"debug={debug}"] + (["trainer.max_epochs=2"] if debug == "overfit" else [])
    train(make_cfg(*overrides))
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"]["test/loss"] > 0


def test_bf16_mixed_precision_and_a_scheduler(make_cfg, tmp_path):
    cfg = make_cfg("trainer.precision=bf16-mixed", "backbone=conv", "scheduler=cosine", "trainer.max_epochs=2")
    train(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert all(torch.isfinite(torch.tensor(value)) for value in metrics.values())
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    steps = checkpoint["lr_schedulers"][0]["last_epoch"]
    assert steps >= 1  # the schedule ran
    cosine = 1e-3 * (1 + math.cos(math.pi * steps / 2)) / 2  # T_max = max_epochs = 2
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(cosine)


def test_last_checkpoint_is_the_last_epoch_even_when_the_loss_stopped_improving(make_cfg, tmp_path):
    # an auto-encoder that cannot learn (steps below float32 precision): the same validation loss every
    # epoch, so epoch 0 stays best
    summary_path = tmp_path / "metrics.json"
    train(make_cfg("model=ae", "optimizer.lr=1e-30", "trainer.max_epochs=3"))
    assert Path(json.loads(summary_path.read_text())["best_checkpoint"]).name == "epoch_000.ckpt"
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["epoch_000.ckpt", "last.ckpt"]


def test_a_sweeper_gets_the_best_checkpoint_s_value_not_the_last_epoch_s(make_cfg, tmp_path):
    # the last epoch validates with its decoder scaled 100-fold: far the worst, so never the best
    spoil = ["+callbacks.spoil._target_=tests.helpers.SpoilValidation", "+callbacks.spoil.epoch=2"]
    returned = train(make_cfg("trainer.max_epochs=3", "optimized_metric=val/elbo", *spoil))
    summary = json.loads((tmp_path / "metrics.json").read_text())
    events = load_events(tmp_path)
    losses, elbos = ([event.value for event in events.Scalars(name)] for name in ("val/loss", "val/elbo"))
    best = losses.index(min(losses))
    assert best < 2 and Path(summary["best_checkpoint"]).name == f"epoch_{best:03d}.ckpt"
    assert returned == pytest.approx(elbos[best], rel=1e-6)  # the checkpoint tested and evaluated
    assert summary["best_epoch"] == best and summary["best_metrics"]["val/elbo"] == returned
    assert summary["best_metrics"]["val/loss"] == pytest.approx(losses[best], rel=1e-6)
    assert summary["metrics"]["val/elbo"] == pytest.approx(elbos[2], rel=1e-6)  # the last epoch's, kept


def test_load_model_rebuilds_the_run_s_backbone_and_likelihood(make_cfg, tmp_path):
    cfg = make_cfg("backbone=conv", "backbone.channels=[8,16]", "backbone.strides=[1,2]", "likelihood=gaussian")
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(cfg, tmp_path / ".hydra" / "config.yaml")  # as @hydra.main does for every run
    train(cfg)
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    model = load_model(checkpoint)
    assert isinstance(model.encoder, ConvEncoder) and isinstance(model.likelihood, Gaussian)
    assert model.likelihood.variance == 0.5 and not model.training
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(state[name], value) for name, value in model.state_dict().items())

    moved = tmp_path / "elsewhere.ckpt"
    moved.write_bytes(checkpoint.read_bytes())
    with pytest.raises(FileNotFoundError, match="rebuilt from the config of its run"):
        load_model(moved)


def test_plateau_scheduler_with_validation_every_other_epoch(make_cfg, tmp_path):
    train(make_cfg("scheduler=plateau", "trainer.check_val_every_n_epoch=2", "trainer.max_epochs=3"))
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "completed"


def test_a_training_time_limit_is_set_like_any_trainer_value(make_cfg):
    # trainer.max_time=..., without Hydra's "+" for a key the config lacks
    _, _, trainer = build(make_cfg("trainer.max_time=00:00:45:00"))
    timer = next(callback for callback in trainer.callbacks if isinstance(callback, Timer))
    assert timer.time_remaining() == 45 * 60


def experiment_jobs() -> list[tuple[str, ...]]:
    """Each experiment, once for every option of each config group its sweep varies (model=vae,gan gives two),
    and once on Fashion-MNIST."""
    jobs = []
    for path in sorted((PROJECT / "conf" / "experiment").glob("*.yaml")):
        params = OmegaConf.select(OmegaConf.load(path), "hydra.sweeper.params", default=None) or {}
        groups = [
            f"{key}={option}" for key, options in params.items() if "." not in key for option in options.split(",")
        ]
        jobs += [(f"experiment={path.stem}", group) for group in groups] or [(f"experiment={path.stem}",)]
        jobs.append((f"experiment={path.stem}", "data=fashion_mnist"))  # every study runs on the second dataset too
    return jobs


@pytest.mark.parametrize("job", experiment_jobs(), ids=" ".join)
def test_every_experiment_config_runs_a_tiny_fit(make_cfg, tmp_path, job):
    # TINY again: the experiment's own sizes come later; and the evaluation the experiment asks for, tiny
    tiny_evaluation = ["evaluation.samples=200", "evaluation.nll.images=20", "evaluation.nll.k=10"]
    train(make_cfg(*job, *TINY, *tiny_evaluation))
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "completed"


def run_train(args: list[str]) -> subprocess.CompletedProcess:
    result = train_py(*args, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_multirun_grid_makes_one_named_folder_per_run(mnist_root, tmp_path):
    sweep = tmp_path / "sweep"
    result = run_train(
        ["-m", "model=vae,ae", "backbone=mlp,conv", f"data.root={mnist_root}", f"paths.root_dir={tmp_path}"]
        + TINY
        + [f"hydra.sweep.dir={sweep}"]
    )
    # a quiet run: no advertising tips, no notices the project's own settings cause
    output = result.stdout + result.stderr + "".join(p.read_text() for p in sweep.glob("*/train.log"))
    assert "Trainer already configured" not in output and "Tip:" not in output and "litlogger" not in output
    runs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert sorted(p.name.rsplit("_", 1)[0] for p in runs) == sorted(
        ["vae-mlp-z20-b1", "vae-conv-z20-b1", "ae-mlp-z20-b1", "ae-conv-z20-b1"]
    )
    columns = set()
    for run in runs:
        summary = json.loads((run / "metrics.json").read_text())
        assert summary["status"] == "completed" and summary["metrics"]["test/loss"] > 0
        events = load_events(run)
        params, _ = hparams_entry(events)
        assert f"{params['model']}-{params['backbone']}-z20-b1" == summary["run_name"]
        columns.add(frozenset(params))
        # the HPARAMS table opens on what the sweep varies, then the studies' settings, whichever run it reads
        assert visible_hparams(events) == ["backbone", "likelihood", "model", "model.beta", "model.latent_dim"]
        assert (run / "projector_config.pbtxt").is_file()  # every run, the AE's too, in the Projector's menu
    # TensorBoard takes the HPARAMS columns from one run: every run must declare the same ones
    assert len(columns) == 1

    prestarted.run([sys.executable, "-m", "vae.report", str(sweep)], timeout=300, check=True)
    with (sweep / "report.csv").open() as file:
        rows = list(csv.DictReader(file))
    runs = sorted((row["model"], row["backbone"], row["status"]) for row in rows)
    assert runs == [(m, b, "completed") for m in ("ae", "vae") for b in ("conv", "mlp")]
    assert all(float(row["test/loss"]) > 0 and int(row["n_params"]) > 0 for row in rows)
    assert (sweep / "sheet_prior_samples.png").is_file() and (sweep / "metrics_vs_latent_dim.png").is_file()


@pytest.mark.slow
def test_parallel_launcher_runs_jobs_side_by_side(tmp_path):
    # archives only: both jobs extract them into the shared cache at the same time
    write_mnist(tmp_path / "data", gz=True)
    sweep = tmp_path / "sweep"
    run_train(
        ["-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "model.latent_dim=2,3"]
        + [f"data.root={tmp_path / 'data'}", f"paths.root_dir={tmp_path}", *TINY, f"hydra.sweep.dir={sweep}"]
        + (["logger=many"] if importlib.util.find_spec("mlflow") else [])  # and both make the MLflow store
    )
    summaries = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert [s["run_name"] for s in summaries] == ["vae-mlp-z2-b1", "vae-mlp-z3-b1"]
    assert not list((tmp_path / ".cache" / "MNIST" / "raw").glob(".*part"))  # no half-written files
    if importlib.util.find_spec("mlflow"):  # each MLflow run names its sweep, for the UI's "Group by"
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{tmp_path / 'logs' / 'mlflow' / 'mlflow.db'}")
        runs = client.search_runs([client.get_experiment_by_name("vae-mnist").experiment_id])
        assert sorted(run.data.tags.get("sweep") for run in runs) == ["sweep", "sweep"]


def test_the_entry_scripts_set_their_imports_apart_from_the_garbage_collector_and_leave_it_on():
    # their imports run, not their main (another run_name); in a process of its own, as the scripts run
    code = (
        "import gc, runpy\n"
        "for script in ('train.py', 'evaluate.py'):\n"
        "    gc.unfreeze()\n"
        "    runpy.run_path(script, run_name='imported')\n"
        "    print(gc.isenabled(), gc.get_freeze_count())\n"
    )
    printed = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True)
    lines = printed.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        enabled, frozen = line.split()
        assert enabled == "True" and int(frozen) > 100_000  # torch and Lightning's objects
