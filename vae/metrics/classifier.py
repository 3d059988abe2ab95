"""The reference classifiers shipped with the project, one per dataset, loaded only if their checksum and
dataset hold; the image size they read."""

import hashlib
import json
import os
from pathlib import Path

import torch

from vae.data.tensors import resize
from vae.nets.classifier import ImageClassifier

CLASSIFIER_SIZE = 28  # the reference classifiers read the datasets' own 28x28 images
ASSETS = Path(__file__).parent / "assets"
WEIGHTS = ASSETS / "mnist_classifier.pt"  # MNIST's; each card (.json beside) says its dataset, accuracy, command


def at_classifier_size(images: torch.Tensor) -> torch.Tensor:
    """``images`` ``(B, C, H, W)`` resized to the reference classifier's 28x28 (bilinear, antialiased)."""
    return resize(images, CLASSIFIER_SIZE)


class ClassifierChecksumError(RuntimeError):
    """The classifier's weights file is not the one its card describes."""


class ClassifierDatasetError(ValueError):
    """The classifier was trained on another dataset than the images it is asked to read."""


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def classifier_weights(name: str | os.PathLike) -> Path:
    """``data.dataset.classifier`` as a path: a file name in ``vae/metrics/assets/``, or any path."""
    path = Path(name).expanduser()
    return path if path.is_absolute() or path.parent != Path() else ASSETS / path


def classifier_card(weights: str | os.PathLike = WEIGHTS) -> dict:
    """What was recorded when the classifier was trained: dataset, test accuracy, command, checksum."""
    return json.loads(Path(weights).with_suffix(".json").read_text())


def classifier_problem(dataset) -> str | None:
    """Why ``dataset`` (a ``data.dataset`` node) has no usable reference classifier, or None when it has one."""
    if dataset.classifier is None:
        return (
            f"data.dataset.classifier=null: {dataset.name} has no reference classifier, which IS, FID and the label "
            f"metrics (evaluation.metrics=cheap|all, model=gan) read its images with. Train one: "
            f"python -m vae.metrics.train_classifier --data <its data config> --out <weights.pt>"
        )
    weights = classifier_weights(dataset.classifier)
    if not weights.is_file() or not weights.with_suffix(".json").is_file():
        return f"data.dataset.classifier={dataset.classifier}: no weights {weights} with their card beside them (.json)"
    try:
        check_dataset(weights, dataset.name)
    except ClassifierDatasetError as err:
        return str(err)
    return None


def reference_classifier(dataset, device: str | torch.device = "cpu") -> ImageClassifier:
    """The reference classifier of ``dataset`` (a ``data.dataset`` node), checked (:func:`load_classifier`).

    Raises:
        ClassifierDatasetError: if the dataset names none, or one trained on another dataset.
    """
    if dataset.classifier is None:
        raise ClassifierDatasetError(classifier_problem(dataset))
    return load_classifier(classifier_weights(dataset.classifier), dataset.name, device)


def check_dataset(weights: str | os.PathLike, dataset: str) -> None:
    """Refuses a classifier whose card names another dataset than ``dataset``.

    Raises:
        ClassifierDatasetError: naming both datasets and where the right classifier comes from.
    """
    trained_on = classifier_card(weights).get("dataset")
    if trained_on != dataset:
        raise ClassifierDatasetError(
            f"data.dataset.classifier={weights}: its card says it was trained on {trained_on}, but the images are "
            f"{dataset}'s; its IS, FID and label accuracies would measure nothing. Give {dataset}'s classifier, or "
            f"train one: python -m vae.metrics.train_classifier --data <{dataset}'s data config>"
        )


def load_classifier(
    weights: str | os.PathLike = WEIGHTS, dataset: str | None = None, device: str | torch.device = "cpu"
) -> ImageClassifier:
    """The reference classifier in eval mode, once its weights match the checksum on its card and,
    given ``dataset``, its card names that dataset.

    Raises:
        ClassifierChecksumError: if the weights file was changed or damaged.
        ClassifierDatasetError: if the classifier was trained on another dataset.
    """
    weights = Path(weights)
    card = weights.with_suffix(".json")
    recorded = json.loads(card.read_text())
    if dataset is not None:
        check_dataset(weights, dataset)
    if (found := sha256(weights)) != recorded["sha256"]:
        raise ClassifierChecksumError(
            f"{weights}: SHA-256 {found} does not match {recorded['sha256']} recorded in {card}; the file was "
            f"changed or damaged. Restore it (git checkout -- {weights.name}) or retrain it: {recorded['command']}"
        )
    net = ImageClassifier(len(recorded.get("classes", range(10))), batch_norm=recorded.get("batch_norm", False))
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.eval().to(device)
