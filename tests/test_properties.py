"""Property-based: every backbone config is either refused by validation or builds and trains.

Never a third outcome, such as a shape error from deep inside torch.
"""

import hydra
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import matrix
from tests.conftest import compose_train
from vae.config import ConfigError, validate

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def as_list(values: list[int]) -> str:
    return "[" + ",".join(map(str, values)) + "]"


@pytest.fixture
def configured(mnist_root, tmp_path):
    """``configured(groups, values)``: the config ``python train.py <groups> <values>`` gives. Hydra composes
    once for each choice of config group options (half a second a composition on a 2-core CPU, 80 examples);
    the values are then set as Hydra sets a command line's: parsed by its grammar, merged with OmegaConf."""
    composed, parser = {}, OverridesParser.create()

    def make(groups: list[str], values: list[str]):
        if tuple(groups) not in composed:
            composed[tuple(groups)] = compose_train(groups, tmp_path, mnist_root)
        return matrix.with_values(composed[tuple(groups)], parser.parse_overrides(values))

    yield make
    GlobalHydra.instance().clear()


def refused_or_trains(cfg, size: int) -> str:
    """'refused' (a ConfigError) or 'trains' (a loss with gradients); anything else propagates."""
    try:
        validate(cfg)
    except ConfigError:
        return "refused"
    torch.manual_seed(0)
    model = hydra.utils.instantiate(cfg.model, img_shape=(1, size, size), _convert_="all")
    x = torch.rand(2, 1, size, size)
    loss = model.loss_terms(x)["loss"]
    loss.backward()
    assert torch.isfinite(loss) and model(x).shape == x.shape
    assert all(p.grad is not None for p in model.parameters())
    return "trains"


@SETTINGS
@given(
    latent_dim=st.integers(-1, 40),
    hidden_dims=st.lists(st.integers(-2, 64), max_size=3),
    size=st.integers(-1, 36),
    model=st.sampled_from(["vae", "ae"]),
)
def test_mlp_backbones(configured, latent_dim, hidden_dims, size, model):
    values = [f"model.latent_dim={latent_dim}", f"backbone.hidden_dims={as_list(hidden_dims)}"]
    cfg = configured([f"model={model}"], [*values, f"data.image_size={size}"])
    invalid = latent_dim < 1 or size < 1 or any(h < 1 for h in hidden_dims)
    assert refused_or_trains(cfg, size) == ("refused" if invalid else "trains")


@SETTINGS
@given(
    latent_dim=st.integers(1, 8),
    channels=st.lists(st.integers(-1, 12), max_size=4),
    strides=st.lists(st.integers(-1, 3), max_size=4),
    kernel_size=st.integers(-1, 5),
    size=st.integers(1, 36),
)
def test_conv_backbones(configured, latent_dim, channels, strides, kernel_size, size):
    values = [
        f"model.latent_dim={latent_dim}",
        f"backbone.channels={as_list(channels)}",
        f"backbone.strides={as_list(strides)}",
        f"backbone.kernel_size={kernel_size}",
        f"data.image_size={size}",
    ]
    outcome = refused_or_trains(configured(["backbone=conv"], values), size)
    lists_ok = channels and len(channels) == len(strides) and min(channels) >= 1 and min(strides, default=0) >= 1
    if not lists_ok or kernel_size < 1:
        assert outcome == "refused"
