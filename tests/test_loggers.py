"""What a run leaves for the tools researchers open: TensorBoard's Projector, Custom Scalars and HPARAMS
table, a CSV file and an MLflow store, each read back with its own reader; and a run continued in its
folder continues each of them."""

import csv
import math
import re
from pathlib import Path

import pytest
from google.protobuf import text_format
from hydra.core.global_hydra import GlobalHydra
from PIL import Image
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalars
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from tests.conftest import TINY_EVALUATION, compose_train, train_in
from tests.tensorboard_events import load_events, visible_hparams
from vae.callbacks.base import take
from vae.training import build
from vae.utils.hparams import HEADLINE

mlflow = pytest.importorskip("mlflow")  # the [mlflow] extra; make install and CI install it

BATCHES = 3  # training batches per epoch (TINY)


def run_in(folder: Path, mnist_root: Path, *overrides: str) -> None:
    train_in(folder, mnist_root, "logger=many", "callbacks.projector.every_n_epochs=1", "seed=0", *overrides)


@pytest.fixture(scope="module")
def continued(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> Path:
    """A run of 1 epoch, continued in its folder to 2 from its last checkpoint, then evaluated."""
    folder = tmp_path_factory.mktemp("run")
    run_in(folder, mnist_root)
    run_in(folder, mnist_root, "trainer.max_epochs=2", "ckpt_path=last", "evaluation.metrics=cheap", *TINY_EVALUATION)
    return folder


def test_the_projector_holds_each_drawn_epoch_s_codes_labelled_with_their_digit_images(continued, mnist_root):
    config = text_format.Parse((continued / "projector_config.pbtxt").read_text(), ProjectorConfig())
    # epoch 0 drawn by the first process (at the step of its validation), epoch 1 by the continued one
    steps = (BATCHES - 1, 2 * BATCHES - 1)
    assert [entry.tensor_name for entry in config.embeddings] == [f"latent_codes:{step:05d}" for step in steps]
    cfg = compose_train([], continued, mnist_root)
    datamodule, _, _ = build(cfg)
    GlobalHydra.instance().clear()
    datamodule.setup("fit")
    _, labels = take(datamodule.val_dataset, 1000)  # the val split has 40 images: all of them
    for entry in config.embeddings:
        rows = (continued / entry.tensor_path).read_text().splitlines()
        assert len(rows) == len(labels) and all(len(row.split("\t")) == 20 for row in rows)  # 20-D codes
        metadata = (continued / entry.metadata_path).read_text().splitlines()
        assert metadata == [str(int(y)) for y in labels]
        side = math.ceil(math.sqrt(len(labels))) * 28
        with Image.open(continued / entry.sprite.image_path) as sprite:
            assert sprite.size == (side, side)
        assert list(entry.sprite.single_image_dim) == [28, 28]


def test_custom_scalars_chart_train_and_val_loss_recon_and_kl_and_the_kl_per_dimension(continued):
    events = load_events(continued)
    (written, *again) = events.Tensors(custom_scalars.CONFIG_SUMMARY_TAG)  # each process writes it
    layout = layout_pb2.Layout.FromString(written.tensor_proto.string_val[0])
    (category,) = layout.category
    charts = {chart.title: list(chart.multiline.tag) for chart in category.chart}
    assert charts == {
        "loss, train and validation": [r"^(train|val)/loss$"],
        "reconstruction and KL, train and validation": [r"^(train|val)/(recon|kl)$"],
        "KL per latent dimension, validation": [r"^val/kl_per_dim/"],
    }
    # each chart's expression matches curves the run logged
    tags = events.Tags()["scalars"]
    for expressions in charts.values():
        assert any(re.search(expressions[0], tag) for tag in tags)


def test_a_single_run_s_hparams_table_opens_on_model_latent_dim_beta_backbone_and_likelihood(continued):
    assert visible_hparams(load_events(continued)) == sorted(HEADLINE)


def test_the_csv_keeps_the_first_process_s_rows_and_continues_them(continued):
    with (continued / "csv" / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    val = [(int(row["step"]), row["epoch"]) for row in rows if row.get("val/loss")]
    assert val == [(BATCHES - 1, "0"), (2 * BATCHES - 1, "1")]  # epoch 0 written by the first process, once
    train_steps = [int(row["step"]) for row in rows if row.get("train/loss")]
    assert train_steps == list(range(2 * BATCHES))  # log_every_n_steps=1: every step once
    tests = [row for row in rows if row.get("test/loss")]
    assert len(tests) == 1 and int(tests[0]["step"]) == 2 * BATCHES  # the continued run's test only
    assert float(tests[0]["test/loss"]) > 0
    (evaluated,) = [row for row in rows if row.get("samples/fid")]  # at the best checkpoint's step
    assert int(evaluated["step"]) in (BATCHES, 2 * BATCHES) and float(evaluated["test/knn_accuracy"]) >= 0


def test_mlflow_holds_one_run_with_the_params_metrics_and_pictures(continued):
    client = mlflow.tracking.MlflowClient(f"sqlite:///{continued / 'logs' / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("vae-mnist")
    (run,) = client.search_runs([experiment.experiment_id])  # the continued process logged to the same run
    assert run.data.tags["run_folder"] == str(continued)
    assert run.data.params["model"] == "vae" and run.data.params["model.latent_dim"] == "20"
    assert run.data.params["trainer.max_epochs"] == "1"  # MLflow keeps a run's parameters as first logged
    assert {"val/loss", "val/elbo", "test/loss", "train/loss", "samples/fid", "test/knn_accuracy"} <= set(
        run.data.metrics
    )  # the evaluation's values too
    history = client.get_metric_history(run.info.run_id, "val/loss")
    assert sorted({m.step for m in history}) == [BATCHES - 1, 2 * BATCHES - 1]
    pictures = {f.path for f in client.list_artifacts(run.info.run_id, "images/reconstructions")}
    assert pictures == {"images/reconstructions/epoch_000.png", "images/reconstructions/epoch_001.png"}
    evaluated = {f.path for f in client.list_artifacts(run.info.run_id, "images/eval")}
    assert {"images/eval/confusion.png", "images/eval/class_histogram.png"} <= evaluated


def test_a_list_of_loggers_builds_each_of_them(make_cfg):
    _, _, trainer = build(make_cfg("logger=[tensorboard,csv]"))
    assert [type(logger).__name__ for logger in trainer.loggers] == ["TensorBoardLogger", "CSVLogger"]
