"""Sample quality measured with the reference classifier: IS, Fréchet distance, label accuracy."""

import warnings

import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from vae.nets.classifier import ImageClassifier

# These metrics measure whole image sets held by one process (the evaluation runs on rank 0 only):
# syncing at compute would wait for DDP processes that are not computing them.
SYNC = False


class Features(nn.Module):
    """The classifier's 128 penultimate activations, as torchmetrics' FID expects of a feature extractor."""

    def __init__(self, classifier: ImageClassifier) -> None:
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x)


def _batches(images: torch.Tensor, device: torch.device, batch_size: int = 1000):
    for batch in images.split(batch_size):
        yield batch.to(device)


@torch.no_grad()
def inception_score(classifier: ImageClassifier, images: torch.Tensor) -> float:
    """exp(E_x[KL(p(y|x) || p(y))]) under the classifier, over all ``images`` at once (one split):
    1 when every image looks alike, the number of classes when each is one confident class and the classes are
    balanced."""
    with warnings.catch_warnings():  # expected here: it keeps all features; one split has no spread
        warnings.filterwarnings("ignore", message=".*save all extracted features.*")
        warnings.filterwarnings("ignore", message=r".*std\(\): degrees of freedom.*")
        device = next(classifier.parameters()).device
        metric = InceptionScore(feature=classifier, splits=1, sync_on_compute=SYNC).to(device)
        for batch in _batches(images, metric.device):
            metric.update(batch)
        return float(metric.compute()[0])


@torch.no_grad()
def frechet_distance(classifier: ImageClassifier, real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the classifier features of two image sets ("FID-MNIST" with
    MNIST's classifier)."""
    device = next(classifier.parameters()).device
    metric = FrechetInceptionDistance(feature=Features(classifier), sync_on_compute=SYNC).to(device)
    for is_real, images in ((True, real), (False, fake)):
        for batch in _batches(images, metric.device):
            metric.update(batch, real=is_real)
    return float(metric.compute())


@torch.no_grad()
def predict(classifier: ImageClassifier, images: torch.Tensor) -> torch.Tensor:
    """The classifier's class for each image, ``(N,)``."""
    device = next(classifier.parameters()).device
    return torch.cat([classifier(batch).argmax(dim=1).cpu() for batch in _batches(images, device)])


def class_histogram(classifier: ImageClassifier, images: torch.Tensor) -> list[int]:
    """How many images the classifier puts in each class."""
    return torch.bincount(predict(classifier, images), minlength=num_classes(classifier)).tolist()


def label_accuracy(classifier: ImageClassifier, images: torch.Tensor, labels: torch.Tensor):
    """Accuracy of the classifier on ``images`` against ``labels``, and the confusion matrix of the classes
    (rows: true class, columns: predicted)."""
    predicted, classes = predict(classifier, images), num_classes(classifier)
    accuracy = MulticlassAccuracy(classes, average="micro")(predicted, labels)
    return float(accuracy), MulticlassConfusionMatrix(classes)(predicted, labels)


def num_classes(classifier: ImageClassifier) -> int:
    return classifier.head[-1].out_features
