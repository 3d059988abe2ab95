"""Bad inputs fail early with one clear message naming the key, the value and what is allowed."""

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
import torch
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from tests.bad_inputs import BAD_INPUTS, NO_GPU_INPUTS
from tests.commands import train_py
from tests.conftest import TINY, compose_train
from vae.callbacks.checks import check_pixel_range
from vae.config import ConfigError, validate
from vae.likelihoods import Bernoulli
from vae.models import VAE
from vae.training import build

PROJECT = Path(__file__).resolve().parents[1]
CASES = BAD_INPUTS + ([] if torch.cuda.is_available() else NO_GPU_INPUTS)


def chain(error: BaseException) -> str:
    """An exception's message with those of its causes, as Hydra prints them."""
    return str(error) + ("\n" + chain(error.__cause__) if error.__cause__ else "")


@pytest.mark.parametrize(("overrides", "where", "message"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_caught_early_with_its_message(mnist_root, tmp_path, overrides, where, message):
    # the GPU case must not have the test settings' accelerator=cpu on top of it
    base = [o for o in TINY if not o.startswith("trainer.accelerator")] if overrides == ["trainer=gpu"] else TINY
    if where == "compose":
        with pytest.raises((HydraException, OmegaConfBaseException)) as error:
            compose_train(overrides, tmp_path, mnist_root, base)
        assert message in chain(error.value)
        return
    cfg = compose_train(overrides, tmp_path, mnist_root, base)
    if where == "validate":
        with pytest.raises(ConfigError) as error:
            validate(cfg)
        assert message in str(error.value)
        assert len(error.value.problems) == 1  # one bad input, one error
        return
    validate(cfg)  # fine on its face: only the data tells
    datamodule, _, _ = build(cfg)
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        datamodule.setup("fit")
    assert not list(tmp_path.iterdir()) or {p.name for p in tmp_path.iterdir()} <= {".cache"}


def test_every_problem_of_a_config_is_reported_at_once(mnist_root, tmp_path):
    cfg = compose_train(["model.latent_dim=0", "optimizer.lr=0", "data.batch_size=0"], tmp_path, mnist_root)
    with pytest.raises(ConfigError) as error:
        validate(cfg)
    assert [p.split("=")[0] for p in error.value.problems] == ["model.latent_dim", "data.batch_size", "optimizer.lr"]


def test_the_default_config_and_every_group_option_pass(mnist_root, tmp_path):
    for overrides in ([], ["model=ae", "backbone=conv", "likelihood=gaussian", "optimizer=sgd", "scheduler=cosine"]):
        validate(compose_train(overrides, tmp_path, mnist_root))


def test_bernoulli_refuses_data_outside_its_support_at_the_first_batch():
    needs = VAE(latent_dim=2).pixel_range()
    with pytest.raises(ConfigError, match=r"likelihood=bernoulli: needs pixels in \[0, 1\].*\[-0.5, 2\]"):
        check_pixel_range(torch.tensor([[-0.5, 2.0]]), *needs)
    assert needs[0] == Bernoulli.support
    check_pixel_range(torch.rand(4, 1, 28, 28), *needs)  # in range: no error


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    return train_py(*args, timeout=300)


@pytest.mark.slow
def test_the_command_line_prints_one_message_exits_nonzero_and_leaves_no_half_run(mnist_root, tmp_path):
    run = tmp_path / "run"
    result = run_cli(["model.latent_dim=0", f"data.root={mnist_root}", "data.verify=header", f"hydra.run.dir={run}"])
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "model.latent_dim=0: must be a whole number >= 1" in output
    assert "Traceback" not in output
    # Hydra's own files, and the record of the failure; no checkpoints, events or pictures
    assert sorted(p.name for p in run.iterdir()) == [".hydra", "metrics.json", "train.log"]

    typo = run_cli(["model.latent_dim=abc", f"hydra.run.dir={tmp_path / 'typo'}"])
    assert typo.returncode == 1 and "full_key: model.latent_dim" in typo.stderr
    assert not (tmp_path / "typo").exists()  # caught while composing: no folder at all


@pytest.mark.slow
def test_ddp_inside_a_local_multirun_is_refused_before_anything_starts(mnist_root, tmp_path):
    # Lightning would start each extra process by running the command line again: the whole sweep again
    sweep = tmp_path / "sweep"
    paths = [f"data.root={mnist_root}", f"paths.root_dir={tmp_path}", f"hydra.sweep.dir={sweep}"]
    result = run_cli(["-m", "trainer=ddp", "trainer.devices=2", "model.latent_dim=2,3", *TINY, *paths])
    assert result.returncode != 0
    summaries = [json.loads(path.read_text()) for path in sorted(sweep.glob("*/metrics.json"))]
    message = "2 processes (trainer.devices=2 x trainer.num_nodes=1) in a multirun on this machine (BasicLauncher)"
    assert len(summaries) == 2 and all(s["status"] == "failed" and message in s["error"] for s in summaries)
    assert not list(sweep.rglob("*.ckpt")) and not list(sweep.rglob("*ddp_process_1*"))


def test_docs_list_every_bad_input_tried():
    doc = (PROJECT / "docs" / "reliability.md").read_text()
    inputs = [" ".join(overrides) for overrides, _, _ in BAD_INPUTS + NO_GPU_INPUTS]
    missing = [given for given in inputs if f"`{given}`" not in doc]
    assert not missing, f"add these to docs/reliability.md: {missing}"
    assert len(BAD_INPUTS) >= 25


@pytest.mark.parametrize(
    "logger, package, problem",
    [
        ("many", "mlflow", 'logger: MLflow (logger=mlflow or many) needs its extra: pip install -e ".[mlflow]"'),
        ("[tensorboard,wandb]", "wandb", 'logger: W&B (logger=wandb) needs its extra: pip install -e ".[wandb]"'),
    ],
)
def test_a_logger_whose_extra_is_not_installed_is_refused_before_anything_starts(
    mnist_root, tmp_path, monkeypatch, logger, package, problem
):
    cfg = compose_train([f"logger={logger}"], tmp_path, mnist_root)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == package else real_find_spec(name, *a)
    )
    with pytest.raises(ConfigError) as error:
        validate(cfg)
    assert error.value.problems == [problem]
