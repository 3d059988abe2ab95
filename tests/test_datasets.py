"""Datasets are a config choice: Fashion-MNIST beside MNIST, and a third dataset added through config alone."""

import json
from pathlib import Path

import pytest
from google.protobuf import text_format
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig
from torchvision.datasets import FashionMNIST

from tests.conftest import TINY, compose_train
from tests.idx import write_mnist
from tests.tensorboard_events import load_events
from vae.config import ConfigError, validate
from vae.data import DataNotFoundError, ImageDataModule
from vae.evaluation import evaluate
from vae.evaluation.suite import table
from vae.metrics import train_classifier
from vae.metrics.classifier import ClassifierDatasetError, classifier_card, classifier_weights, load_classifier
from vae.report.runs import read_run
from vae.training import train
from vae.utils.compose import CONF_DIR

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]  # fmt: skip
SHAPES = ["circle", "square", "triangle"]
CHEAP = ["evaluation.metrics=cheap", "evaluation.samples=40", "evaluation.silhouette_sample=20"]


def projector_metadata(run: Path) -> list[list[str]]:
    """The labels of each Projector entry of a run, as TensorBoard reads them."""
    config = text_format.Parse((run / "projector_config.pbtxt").read_text(), ProjectorConfig())
    return [(run / entry.metadata_path).read_text().splitlines() for entry in config.embeddings]


def test_fashion_mnist_serves_its_class_names_and_its_own_pixel_statistics(mnist_root):
    fashion = ImageDataModule("fashion_mnist", root=mnist_root, val_size=20, verify="header", normalize=True)
    fashion.setup()
    assert fashion.classes == FASHION_CLASSES and fashion.dataset.name == "FashionMNIST"
    assert fashion.stats == (0.2860, 0.3530)
    mnist = ImageDataModule(root=mnist_root, val_size=20, verify="header")
    mnist.setup()
    assert mnist.classes == [str(digit) for digit in range(10)]  # MNIST's names are its digits, as before
    # the tiny files of the two folders differ: each data module reads its own
    assert not (fashion.denormalize(fashion.test_dataset[0][0]) - mnist.test_dataset[0][0]).abs().max() < 1e-3


def test_a_fashion_run_labels_the_projector_and_figures_with_class_names(make_cfg, tmp_path):
    train(make_cfg("data=fashion_mnist", *CHEAP))
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "completed"
    (labels,) = projector_metadata(tmp_path)
    assert labels and set(labels) <= set(FASHION_CLASSES) and "Ankle boot" in labels
    (result,) = json.loads((tmp_path / "checkpoints" / "eval.json").read_text()).values()
    assert result["dataset"] == result["trained_on"] == "FashionMNIST" and result["classes"] == FASHION_CLASSES
    card = classifier_card(classifier_weights("fashion_mnist_classifier.pt"))
    assert result["classifier_test_accuracy"] == card["test_accuracy"] and card["dataset"] == "FashionMNIST"
    assert "eval/confusion" in load_events(tmp_path).Tags()["images"]


def test_missing_fashion_files_are_reported_before_anything_is_built(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])  # a mirror that refuses: offline
    cfg = make_cfg("data=fashion_mnist", f"data.root={tmp_path / 'empty'}")
    with pytest.raises(DataNotFoundError) as error:
        train(cfg)
    message = str(error.value)
    assert str(tmp_path / "empty" / "FashionMNIST" / "raw") in message and "t10k-labels-idx1-ubyte.gz" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert not list(tmp_path.glob("**/events.out.tfevents*")) and not (tmp_path / "checkpoints").exists()


def test_a_classifier_of_another_dataset_is_refused(make_cfg):
    mnist_weights = classifier_weights("mnist_classifier.pt")
    with pytest.raises(ClassifierDatasetError, match="trained on MNIST, but the images are FashionMNIST's"):
        load_classifier(mnist_weights, "FashionMNIST")
    cfg = make_cfg("data=fashion_mnist", f"data.dataset.classifier={mnist_weights}", *CHEAP)
    with pytest.raises(ConfigError, match="trained on MNIST, but the images are FashionMNIST's"):
        validate(cfg)
    with pytest.raises(ConfigError, match=r"data.dataset.classifier=null: FashionMNIST has no reference classifier"):
        validate(make_cfg("data=fashion_mnist", "data.dataset.classifier=null", "model=gan"))
    validate(make_cfg("data=fashion_mnist", "data.dataset.classifier=null"))  # nothing reads it: accepted


def test_a_model_trained_on_mnist_is_evaluated_on_fashion_only_when_asked(make_cfg, tmp_path, mnist_root, caplog):
    cfg = make_cfg(*CHEAP)
    train(cfg)
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(cfg, tmp_path / ".hydra" / "config.yaml")  # as python train.py records it
    (tmp_path / ".hydra" / "overrides.yaml").write_text("[]\n")
    GlobalHydra.instance().clear()
    asked = [f"data_root={mnist_root}", *CHEAP]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        plain = compose("eval", overrides=[f"ckpt_path={tmp_path}", *asked])
        other = compose("eval", overrides=[f"ckpt_path={tmp_path}", "data=fashion_mnist", *asked])
    (own,) = evaluate(plain)
    assert own["dataset"] == own["trained_on"] == "MNIST"
    (ood,) = evaluate(other)
    assert ood["dataset"] == "FashionMNIST" and ood["trained_on"] == "MNIST"
    assert ood["classes"] == FASHION_CLASSES and "Out of distribution" in caplog.text
    assert "FashionMNIST (out of distribution: the model was trained on MNIST)" in table(ood)
    # kept apart from the run's own evaluation, which it leaves as it was
    recorded = json.loads((tmp_path / "checkpoints" / "eval.json").read_text())
    assert [entry["dataset"] for entry in recorded.values()] == ["MNIST", "FashionMNIST"]
    assert list(recorded)[1] == f"{Path(own['checkpoint']).name} on FashionMNIST"
    scalars = load_events(tmp_path).Tags()["scalars"]
    assert "samples/fid" in scalars and "ood/FashionMNIST/samples/fid" in scalars
    assert read_run(tmp_path).metrics["samples/fid"] == own["samples/fid"]  # sweep reports read the run's own


@pytest.fixture
def third_dataset(tmp_path: Path) -> tuple[Path, Path]:
    """A dataset the project has never heard of: three classes of generated 28x28 images, its data config in a
    folder of its own, and its reference classifier trained by the project's classifier training."""
    root = tmp_path / "data"
    write_mnist(root, name="TinyShapes", classes=len(SHAPES), seed=3)
    weights = tmp_path / "shapes_classifier.pt"
    conf = tmp_path / "conf" / "data"
    conf.mkdir(parents=True)
    spec = {
        "name": "TinyShapes", "classes": SHAPES, "mean": 0.5, "std": 0.29, "md5": None, "download": None,
        "get": "They are generated by the test.", "classifier": str(weights),
    }  # fmt: skip
    (conf / "tiny_shapes.yaml").write_text(OmegaConf.to_yaml({"defaults": ["mnist", "_self_"], "dataset": spec}))
    arguments = ["--data", str(conf / "tiny_shapes.yaml"), "--data-root", str(root), "--val-size", "40"]
    card = train_classifier.main([*arguments, "--epochs", "1", "--verify", "header", "--out", str(weights)])
    assert card["dataset"] == "TinyShapes" and card["classes"] == SHAPES
    return root, conf.parent


@pytest.mark.slow
def test_a_third_dataset_added_through_config_alone_trains_draws_and_is_evaluated(third_dataset, tmp_path):
    root, conf = third_dataset
    run = tmp_path / "run"
    overrides = [f"hydra.searchpath=[file://{conf}]", "data=tiny_shapes", *CHEAP]
    cfg = compose_train(overrides, run, root, base=[*TINY, "callbacks.projector.every_n_epochs=1"])
    try:
        train(cfg)
    finally:
        GlobalHydra.instance().clear()
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    for labels in projector_metadata(run):
        assert set(labels) == set(SHAPES)
    tags = load_events(run).Tags()["images"]
    assert {"figures/latent_scatter", "eval/confusion", "eval/class_histogram"} <= set(tags)
    (result,) = json.loads((run / "checkpoints" / "eval.json").read_text()).values()
    assert result["dataset"] == "TinyShapes" and len(result["recon/confusion"]) == len(SHAPES)
    assert len(result["samples/class_histogram"]) == len(SHAPES)
