"""test/nll and test/eval_elbo of a VAE, with the protocol they were measured under."""

import math

import torch
from omegaconf import DictConfig

from vae.evaluation.data import data_module, whole
from vae.metrics import in_pixel_units, iw_log_likelihood
from vae.models import VAE, LatentVariableModel


def protocol_images(model: VAE, run_cfg: DictConfig, served) -> tuple[torch.Tensor, str, bool]:
    """The test images a likelihood is measured on, at the model's size, what they are, and whether standardized.

    A Bernoulli model is measured on binary images: the data module's own fixed draw of the
    test set (the standard protocol), which is also what the trainer tests on under static or
    dynamic binarization, so test/eval_elbo and the trainer's test/elbo see the same images. A
    Gaussian model is measured on the test images as the run served them.
    """
    size = f"{served.image_size}x{served.image_size}"
    if model.likelihood.name == "bernoulli":
        # the run's own test images when it served that draw unstandardized; else the draw rebuilt
        binary = served.binarize != "none" and not served.normalize
        fixed = served if binary else data_module(run_cfg, binarize="static", normalize=False)
        draw = f"the data module's fixed test draw (data.split_seed={fixed.split_seed})"
        served_alike = "the images the trainer tests on under data.binarize=static or dynamic"
        return whole(fixed.test_dataset)[0], f"test images at {size} binarized once, {draw}, {served_alike}", False
    served_as = f"data.binarize={served.binarize}, data.normalize={served.normalize}"
    variance = f"Gaussian likelihood, variance {model.likelihood.variance}"
    data = f"test images at {size} as the run served them ({served_as}; {variance})"
    return whole(served.test_dataset)[0], data, served.normalize


def likelihood_metrics(model: LatentVariableModel, run_cfg: DictConfig, served, evaluation: DictConfig, device) -> dict:
    """test/nll by the IWAE bound (``metrics=all`` only) and test/eval_elbo on the same images, with the protocol.

    Args:
        model: the model measured; only a VAE defines p(x).
        run_cfg: the run's config, to rebuild its data module.
        served: the run's data module as it served the test images.
        evaluation: the ``evaluation`` config group.
        device: where the model runs.
    """
    if not isinstance(model, VAE):
        name = "an auto-encoder" if isinstance(model, LatentVariableModel) else f"a {type(model).__name__}"
        return {"test/nll": None, "nll_protocol": f"{name} defines no likelihood p(x): no NLL"}
    settings = evaluation.nll
    images, data, standardized = protocol_images(model, run_cfg, served)
    batches = [batch.to(device) for batch in images[: settings.images or len(images)].split(settings.batch)]
    count, pixels = sum(len(batch) for batch in batches), math.prod(model.img_shape)
    units = "nats per image, as a density of the [0, 1] pixels"
    if standardized:  # the model's density is of standardized pixels: the change of variables back to [0, 1]
        std = served.dataset.std
        jacobian = f"D ln(std) = {pixels} ln({std}) = {pixels * math.log(std):.1f}"
        units += f" (log p(x) = log p(standardized x) - D ln(std), {jacobian})"

    def log_likelihood(k: int, **options) -> float:
        log_px = torch.cat([iw_log_likelihood(model, batch, k, **options) for batch in batches])
        return float((in_pixel_units(log_px, pixels, served.dataset.std) if standardized else log_px).mean())

    result = {"test/eval_elbo": log_likelihood(k=1)}
    if evaluation.metrics != "all":
        protocol = f"not computed (metrics={evaluation.metrics}); test/eval_elbo on {count} {data}; {units}"
        return result | {"nll_protocol": protocol}
    nll = -log_likelihood(settings.k, max_decodes=settings.max_decodes)
    protocol = f"IWAE bound, k={settings.k}, and test/eval_elbo, on {count} {data}; {units}"
    return result | {"test/nll": nll, "nll_protocol": protocol}
