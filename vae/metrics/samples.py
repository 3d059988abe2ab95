"""Sample quality measured with the reference classifier: IS, Fréchet distance, label accuracy."""

import warnings

import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from vae.nets.classifier import DigitClassifier

# These metrics measure whole image sets held by one process (the evaluation runs on rank 0 only):
# syncing at compute would wait for DDP processes that are not computing them.
SYNC = False


class Features(nn.Module):
    """The classifier's 128 penultimate activations, as torchmetrics' FID expects of a feature extractor."""

    def __init__(self, classifier: DigitClassifier) -> None:
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x)


def _batches(images: torch.Tensor, device: torch.device, batch_size: int = 1000):
    for batch in images.split(batch_size):
        yield batch.to(device)


@torch.no_grad()
def inception_score(classifier: DigitClassifier, images: torch.Tensor) -> float:
    """exp(E_x[KL(p(y|x) || p(y))]) under the classifier, over all ``images`` at once (one split):
    1 when every image looks alike, 10 when each is one confident digit and the digits are balanced."""
    with warnings.catch_warnings():  # expected here: it keeps all features; one split has no spread
        warnings.filterwarnings("ignore", message=".*save all extracted features.*")
        warnings.filterwarnings("ignore", message=r".*std\(\): degrees of freedom.*")
        device = next(classifier.parameters()).device
        metric = InceptionScore(feature=classifier, splits=1, sync_on_compute=SYNC).to(device)
        for batch in _batches(images, metric.device):
            metric.update(batch)
        return float(metric.compute()[0])


@torch.no_grad()
def frechet_distance(classifier: DigitClassifier, real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the classifier features of two image sets ("FID-MNIST")."""
    device = next(classifier.parameters()).device
    metric = FrechetInceptionDistance(feature=Features(classifier), sync_on_compute=SYNC).to(device)
    for is_real, images in ((True, real), (False, fake)):
        for batch in _batches(images, metric.device):
            metric.update(batch, real=is_real)
    return float(metric.compute())


@torch.no_grad()
def predict(classifier: DigitClassifier, images: torch.Tensor) -> torch.Tensor:
    """The classifier's digit for each image, ``(N,)``."""
    device = next(classifier.parameters()).device
    return torch.cat([classifier(batch).argmax(dim=1).cpu() for batch in _batches(images, device)])


def class_histogram(classifier: DigitClassifier, images: torch.Tensor) -> list[int]:
    """How many images the classifier puts in each digit class."""
    return torch.bincount(predict(classifier, images), minlength=10).tolist()


def label_accuracy(classifier: DigitClassifier, images: torch.Tensor, labels: torch.Tensor):
    """Accuracy of the classifier on ``images`` against ``labels``, and the 10x10 confusion matrix
    (rows: true digit, columns: predicted)."""
    predicted = predict(classifier, images)
    accuracy = MulticlassAccuracy(10, average="micro")(predicted, labels)
    return float(accuracy), MulticlassConfusionMatrix(10)(predicted, labels)
