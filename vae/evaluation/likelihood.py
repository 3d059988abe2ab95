"""test/nll and test/eval_elbo of a VAE, with the protocol they were measured under."""

import torch
from omegaconf import DictConfig

from vae.metrics import iw_log_likelihood
from vae.models import VAE, LatentVariableModel


def likelihood_metrics(model: LatentVariableModel, reference, x, evaluation: DictConfig, device) -> dict:
    """test/nll by the IWAE bound (``metrics=all`` only) and test/eval_elbo, with the protocol stated.

    test/eval_elbo is the ELBO on the protocol's images (for a Bernoulli model, one fixed
    binarization), not the trainer's test/elbo on the test images as the run served them.
    """
    if not isinstance(model, VAE):
        name = "an auto-encoder" if isinstance(model, LatentVariableModel) else f"a {type(model).__name__}"
        return {"test/nll": None, "nll_protocol": f"{name} defines no likelihood p(x): no NLL"}
    settings = evaluation.nll
    if model.likelihood.name == "bernoulli":  # the standard protocol: one fixed binarization of the test set
        images = torch.bernoulli(reference, generator=torch.Generator().manual_seed(settings.seed))
        data = f"test images binarized once with seed {settings.seed} (Bernoulli likelihood)"
    else:
        images = x
        data = f"test images as the run served them (Gaussian likelihood, variance {model.likelihood.variance})"
    batches = [batch.to(device) for batch in images[: settings.images or len(images)].split(settings.batch)]
    count = sum(len(batch) for batch in batches)
    result = {"test/eval_elbo": float(torch.cat([iw_log_likelihood(model, batch, k=1) for batch in batches]).mean())}
    if evaluation.metrics != "all":
        return result | {"nll_protocol": f"not computed (metrics={evaluation.metrics}); ELBO on {count} {data}"}
    log_px = torch.cat([iw_log_likelihood(model, batch, settings.k, settings.chunk) for batch in batches])
    protocol = f"IWAE bound, k={settings.k}, on {count} {data}; nats per image"
    return result | {"test/nll": float(-log_px.mean()), "nll_protocol": protocol}
