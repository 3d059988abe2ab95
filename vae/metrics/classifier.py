"""The reference MNIST classifier shipped with the project, loaded only if its checksum holds."""

import hashlib
import json
import os
from pathlib import Path

import torch

from vae.nets.classifier import DigitClassifier

WEIGHTS = Path(__file__).parent / "assets" / "mnist_classifier.pt"
CARD = WEIGHTS.with_suffix(".json")  # test accuracy, training command, SHA-256 of the weights


class ClassifierChecksumError(RuntimeError):
    """The classifier's weights file is not the one its card describes."""


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def classifier_card(weights: str | os.PathLike = WEIGHTS) -> dict:
    """What was recorded when the classifier was trained: test accuracy, command, checksum."""
    return json.loads(Path(weights).with_suffix(".json").read_text())


def load_classifier(
    weights: str | os.PathLike = WEIGHTS, card: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> DigitClassifier:
    """The reference classifier in eval mode, once its weights match the checksum on its card.

    Raises:
        ClassifierChecksumError: if the weights file was changed or damaged.
    """
    weights = Path(weights)
    card = Path(card) if card else weights.with_suffix(".json")
    recorded = json.loads(card.read_text())
    if (found := sha256(weights)) != recorded["sha256"]:
        raise ClassifierChecksumError(
            f"{weights}: SHA-256 {found} does not match {recorded['sha256']} recorded in {card}; the file was "
            f"changed or damaged. Restore it (git checkout -- {weights.name}) or retrain it: {recorded['command']}"
        )
    net = DigitClassifier()
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.eval().to(device)
