"""What the reference classifier and the latent space say of a model: codes, reconstructions, samples."""

import torch
from omegaconf import DictConfig

from vae.evaluation.data import whole
from vae.metrics.classifier import at_classifier_size, classifier_card, classifier_weights
from vae.metrics.latent import active_units, kl_per_dimension, knn_accuracy, perturbed_codes, silhouette
from vae.metrics.samples import class_histogram, frechet_distance, inception_score, label_accuracy, predict
from vae.models import VAE, LatentVariableModel


def latent_metrics(model: LatentVariableModel, served, x, labels, evaluation: DictConfig) -> dict:
    """Active units, KL per dimension, and how well the codes separate the classes."""
    codes = model.encode_all(x)  # (N, D) posterior means of the test images
    result = {}
    result["test/active_units"], variance = active_units(codes)
    result["latent_variance"] = variance.tolist()
    if isinstance(model, VAE) and model.logs_kl_per_dim:  # a mixture prior's KL does not split by dimension
        posteriors = [model.encode(batch.to(model.device)) for batch in x.split(1000)]  # (mu, logvar) pairs
        mu, logvar = (torch.cat([p[i] for p in posteriors]).cpu() for i in (0, 1))
        result["kl_per_dim"] = kl_per_dimension(mu, logvar).tolist()
    train_x, train_labels = whole(served.train_dataset)
    result["test/knn_accuracy"] = knn_accuracy(model.encode_all(train_x), train_labels, codes, labels, evaluation.knn_k)
    result["test/silhouette"] = silhouette(codes, labels, evaluation.silhouette_sample, evaluation.seed)
    return result


def readable(served, images: torch.Tensor) -> torch.Tensor:
    """Pixel values in [0, 1], 28x28, as the reference classifier takes them."""
    return at_classifier_size(served.denormalize(images).clamp(0, 1))


def prior_samples(model, evaluation: DictConfig) -> tuple[torch.Tensor, str]:
    """``evaluation.samples`` images decoded from z drawn from the model's prior, in the served pixel
    space, and what they are.

    A VAE's samples are usually its decoder means E[x|z]: smooth, noise-free images, unlike a
    GAN's outputs, which are its samples. ``evaluation.sample_pixels=sampled`` draws x ~ p(x|z)
    from the same means instead (Bernoulli pixels, or mean plus Gaussian noise): the model's own
    samples, like for like with a GAN's.
    """
    generator = torch.Generator().manual_seed(evaluation.seed)
    z = model.sample_prior(evaluation.samples, generator)
    means, prior = model.decode_all(z), model.prior_name()  # (N, C, H, W)
    likelihood = getattr(model, "likelihood", None)
    if likelihood is None:  # a GAN: its outputs are its samples
        return means, f"generator outputs G(z), z ~ {prior}"
    if evaluation.sample_pixels == "mean":
        return means, f"decoder means E[x|z], z ~ {prior}"
    return likelihood.sample(means, generator), f"pixels drawn from p(x|z) ({likelihood.name}), z ~ {prior}"


def sample_metrics(model, served, reference, evaluation: DictConfig, classifier) -> dict:
    """Samples of the model (:func:`prior_samples`), as the reference classifier sees them."""
    samples, kind = prior_samples(model, evaluation)
    samples = readable(served, samples)
    return {
        "samples_kind": kind,
        "samples_prior": model.prior_name(),
        "samples/inception_score": inception_score(classifier, samples),
        "samples/fid": frechet_distance(classifier, reference, samples),
        "samples/class_histogram": class_histogram(classifier, samples),
        "classifier_test_accuracy": classifier_card(classifier_weights(served.dataset.classifier))["test_accuracy"],
    }


def reconstruction_metrics(model: LatentVariableModel, served, x, labels, reference, evaluation, classifier) -> dict:
    """Reconstructions of the test images, and decodings of their codes under noise, as the classifier reads them."""
    codes = model.encode_all(x)
    reconstructions = readable(served, model.decode_all(codes))
    accuracy, confusion = label_accuracy(classifier, reconstructions, labels)
    noise = torch.randn(codes.shape, generator=torch.Generator().manual_seed(evaluation.seed))
    relative = evaluation.noise_relative
    decoded = (
        readable(served, model.decode_all(perturbed_codes(codes, sigma, noise, relative)))
        for sigma in evaluation.noise_sigmas
    )
    robustness = [float((predict(classifier, images) == labels).double().mean()) for images in decoded]
    return {
        "recon/fid": frechet_distance(classifier, reference, reconstructions),
        "recon/accuracy": accuracy,
        "recon/confusion": confusion.tolist(),
        "noise_robustness": {"sigma": list(evaluation.noise_sigmas), "accuracy": robustness, "relative": relative},
    }
