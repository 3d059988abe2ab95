"""The two-layer HVAE against the one-layer model it contains and a direct computation of its weights."""

import json
import math
from pathlib import Path

import pytest
import torch
from torch.distributions import Independent, Normal

from tests.conftest import TINY_EVALUATION
from tests.tensorboard_events import load_events
from tests.test_metrics import Linear
from tests.test_priors import VARIANCE, components, mixture
from vae.likelihoods import Gaussian
from vae.metrics import iw_log_likelihood
from vae.models import HVAE, VAE
from vae.training import train

PROJECT = Path(__file__).resolve().parents[1]
Z1, Z2 = 3, 2


def linear_backbone() -> dict:
    return {
        "encoder": lambda in_shape, out_dim: Linear(math.prod(in_shape), (out_dim,)),
        "decoder": lambda latent_dim, out_shape: Linear(latent_dim, tuple(out_shape)),
        "likelihood": Gaussian(variance=VARIANCE),
        "img_shape": (1, 2, 3),
    }


def hvae(**options) -> HVAE:
    torch.manual_seed(0)
    return HVAE(latent_dim=Z2, z1_dim=Z1, link_hidden_dims=[4], **linear_backbone(), **options).eval()


def with_the_top_layer_cut_off(model: HVAE) -> HVAE:
    """q(z2 | z1) = p(z2) = N(0, I) and p(z1 | z2) = N(0, I): the top layer carries nothing."""
    with torch.no_grad():
        for link in (model.up, model.down):
            link.net[-1].weight.zero_()
            link.net[-1].bias.zero_()
    return model


def one_layer_copy(model: HVAE) -> VAE:
    """The one-layer VAE of the HVAE's lower layer: its encoder q(z1 | x) and decoder p(x | z1)."""
    vae = VAE(latent_dim=Z1, mc_samples=model.hparams.mc_samples, **linear_backbone()).eval()
    vae.encoder.load_state_dict(model.encoder.state_dict())
    vae.decoder.load_state_dict(model.decoder.state_dict())
    return vae


def test_with_its_top_layer_cut_off_the_hvae_is_the_one_layer_vae():
    model = with_the_top_layer_cut_off(hvae())
    vae, x = one_layer_copy(model), 3 * torch.randn(6, 1, 2, 3)
    for k in (1, 20):  # k = 1: the ELBO of one sample; the same draws of z1 give the same weights
        torch.manual_seed(k)
        two = iw_log_likelihood(model, x, k=k)
        torch.manual_seed(k)
        torch.testing.assert_close(two, iw_log_likelihood(vae, x, k=k), atol=1e-5, rtol=0)
    # trained on: the same reconstruction term for the same draws of z1, and the Monte-Carlo KL of both
    # layers agrees with the one-layer VAE's closed form
    model = with_the_top_layer_cut_off(hvae(mc_samples=20_000))
    vae = one_layer_copy(model)
    torch.manual_seed(3)
    hierarchical = model.loss_terms(x)
    torch.manual_seed(3)
    flat = vae.loss_terms(x)
    torch.testing.assert_close(hierarchical["recon"], flat["recon"])
    assert flat["kl"] > 1  # the images' posteriors are not the prior
    assert hierarchical["kl"].item() == pytest.approx(flat["kl"].item(), abs=0.05)


@pytest.mark.parametrize("prior", ["standard", "vamp"])
def test_the_iw_estimate_is_a_direct_sum_over_both_layers_samples(prior):
    model = hvae(prior=prior, pseudo_inputs=3)
    x, k = torch.randn(5, 1, 2, 3), 6
    torch.manual_seed(4)
    estimate = iw_log_likelihood(model, x, k=k, max_decodes=4)  # several passes
    torch.manual_seed(4)
    with torch.no_grad():
        eps1, eps2 = torch.randn(k, 5, Z1).double(), torch.randn(k, 5, Z2).double()  # the estimate's draws

        def net(name: str, t: torch.Tensor) -> torch.Tensor:  # the model's networks, in float64 around them
            return getattr(model, name)(t.float()).double()

        mu1, logvar1 = net("encoder", x).chunk(2, dim=-1)
        q1 = Independent(Normal(mu1, torch.exp(0.5 * logvar1)), 1)
        z1 = mu1 + torch.exp(0.5 * logvar1) * eps1  # (k, B, Z1)
        mu2, logvar2 = net("up", z1).chunk(2, dim=-1)
        q2 = Independent(Normal(mu2, torch.exp(0.5 * logvar2)), 1)
        z2 = mu2 + torch.exp(0.5 * logvar2) * eps2
        p_mu1, p_logvar1 = net("down", z2).chunk(2, dim=-1)
        p1 = Independent(Normal(p_mu1, torch.exp(0.5 * p_logvar1)), 1)
        p2 = Independent(Normal(torch.zeros(Z2, dtype=torch.float64), 1.0), 1)
        if prior == "vamp":
            p2 = mixture(*(t.double() for t in components(model)))
        decoded = model.decoder(z1.flatten(0, 1).float()).double().view(k, *x.shape)
        log_lik = Normal(decoded, math.sqrt(VARIANCE)).log_prob(x.double()).flatten(2).sum(-1)  # (k, B)
        log_w = log_lik + p1.log_prob(z1) + p2.log_prob(z2) - q1.log_prob(z1) - q2.log_prob(z2)
    torch.testing.assert_close(estimate, torch.logsumexp(log_w, dim=0) - math.log(k), atol=1e-5, rtol=0)


def test_the_hvae_s_iw_bound_rises_with_k():
    model, x = hvae(), torch.randn(100, 1, 2, 3)
    bounds = []
    for k in (1, 10, 100):
        estimates = []
        for seed in range(3):
            torch.manual_seed(seed)
            estimates.append(iw_log_likelihood(model, x, k=k, max_decodes=100 * len(x)).mean())
        bounds.append(torch.stack(estimates).mean())
    assert bounds[0] < bounds[1] < bounds[2]


@pytest.mark.parametrize("prior", ["standard", "vamp"])
def test_an_hvae_run_trains_draws_its_top_layer_and_is_evaluated(make_cfg, tmp_path, prior):
    overrides = ["model=hvae", f"model.prior={prior}", "model.pseudo_inputs=8", "model.latent_dim=3"]
    train(make_cfg(*overrides, "evaluation.metrics=all", *TINY_EVALUATION))
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["run_name"] == "hvae-mlp-z3-b1"
    tags = load_events(tmp_path).Tags()
    assert {"images/prior_samples", "images/reconstructions", "figures/latent_scatter_3d"} <= set(tags["images"])
    assert ("images/pseudo_inputs" in tags["images"]) == (prior == "vamp")
    assert not any("kl_per_dim" in tag for tag in tags["scalars"])  # a KL of two layers does not split by dimension
    (entry,) = json.loads((tmp_path / "checkpoints" / "eval.json").read_text()).values()
    assert math.isfinite(entry["test/nll"]) and len(entry["latent_variance"]) == 3  # the top layer's codes


def docs_commands(page: str) -> list[list[str]]:
    """The overrides of every ``python train.py ...`` line in the code blocks of a docs page."""
    text = (PROJECT / "docs" / page).read_text()
    blocks = text.split("```")[1::2]
    lines = [line.split("#")[0].split() for block in blocks for line in block.splitlines()]
    return [line[2:] for line in lines if line[:2] == ["python", "train.py"]]


@pytest.mark.parametrize("overrides", docs_commands("models.md"), ids=" ".join)
def test_the_commands_of_the_models_page_run(make_cfg, tmp_path, overrides):
    train(make_cfg(*overrides, "model.pseudo_inputs=8"))  # the page's models at tiny size
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "completed"
