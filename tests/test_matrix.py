"""Every configuration validation accepts runs to the end; every other is refused before anything is built.

The runs are a pairwise covering set of the option space (``tests/matrix.py``), asked of the real config:
Hydra composes each, ``vae.config.validate`` accepts or refuses it, and each option is read back. Each run
trains a few batches, validates, tests and evaluates at tiny size; an in-process run then resumes from its
last checkpoint for one more epoch. Multi-process runs go through ``python train.py`` as users launch them
(DDP runs are resumed in tests/test_ddp_data.py). Which pairs
the runs covered is computed from the configs they recorded, and every option of the config is either in
the matrix or excluded with its reason.
"""

import json
import logging
import math
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from tests import matrix
from tests.commands import run_in_group
from tests.conftest import TINY, compose_train
from vae.config import ConfigError
from vae.training import train
from vae.utils.compose import compose_config

# What the evaluation measures in the matrix's runs: a handful of importance samples and draws (its own
# counts, not conftest's TINY_EVALUATION, which the other in-process tests share).
MATRIX_EVALUATION = ["evaluation.nll.k=4", "evaluation.samples=64", "evaluation.silhouette_sample=20"]


@pytest.fixture(scope="module")
def the_matrix() -> tuple[list[dict], dict, dict]:
    return matrix.build([f"data.root={Path('/nonexistent')}", *TINY])


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def check_completed(run_dir: Path, epochs: int, evaluated: bool) -> None:
    """The run ended as completed, with finite metrics, after ``epochs`` epochs, evaluated if asked."""
    record = summary(run_dir)
    assert record["status"] == "completed", record.get("error")
    assert record["metrics"] and all(math.isfinite(v) for v in record["metrics"].values()), record["metrics"]
    assert any(name.startswith("val/") for name in record["metrics"])
    assert ("samples/fid" in record["metrics"]) == evaluated
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == epochs - 1


def run_in_process(overrides: list[str], run_dir: Path, mnist_root: Path) -> tuple[str, dict]:
    """Trains in this process; returns what Lightning logged and the values the run held."""
    lines, handler = [], logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    lightning_log = logging.getLogger("lightning.pytorch")  # it does not propagate to the root logger
    lightning_log.addHandler(handler)
    try:
        # the runs share one project folder, as a user's runs do: one MLflow store under its logs/ (the first run
        # makes it; each new store's migrations cost about 3 s on a 2-core CPU)
        cfg = compose_train(overrides, run_dir, mnist_root, root_dir=run_dir.parent)
        held = matrix.read_back(cfg, dict(HydraConfig.get().runtime.choices))
        train(cfg)
    finally:
        lightning_log.removeHandler(handler)
        GlobalHydra.instance().clear()
    return "\n".join(lines), held


def run_as_command(overrides: list[str], run_dir: Path, mnist_root: Path) -> tuple[str, dict]:
    """``python train.py`` with its ranks in one process group, all killed if it hangs; returns its output
    and the values the run held, as its own record of its config says."""
    paths = [f"data.root={mnist_root}", f"paths.root_dir={run_dir.parent}", f"hydra.run.dir={run_dir}"]
    result = run_in_group([sys.executable, "train.py", *TINY, *overrides, *paths])
    assert result.returncode == 0, result.stdout[-3000:]
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    choices = OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra.runtime.choices
    return result.stdout, matrix.read_back(cfg, dict(choices))


@pytest.mark.slow
def test_every_accepted_combination_trains_tests_evaluates_and_resumes_and_the_runs_cover_every_pair(
    the_matrix, mnist_root, tmp_path
):
    runs, _, _ = the_matrix
    assert matrix.estimated_seconds(runs) <= matrix.BUDGET_S, "the covering set outgrew its time budget"
    failures, ran, started = [], [], time.monotonic()
    for i, run in enumerate(runs):
        launch = run_as_command if run["processes"] > 1 else run_in_process
        overrides, run_dir = [*matrix.overrides(run), *MATRIX_EVALUATION], tmp_path / f"run{i}"
        evaluated = run["evaluation"] != "none"
        try:
            began = time.monotonic()
            _, held = launch(overrides, run_dir, mnist_root)
            check_completed(run_dir, epochs=1, evaluated=evaluated)
            if launch is run_in_process:  # DDP runs resume in tests/test_ddp_data.py
                resume = [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=2"]
                output, held = launch([*overrides, *resume], run_dir, mnist_root)
                assert "Restoring states from the checkpoint" in output  # resumed, not started again
                check_completed(run_dir, epochs=2, evaluated=evaluated)
            ran.append(held)
            print(f"{time.monotonic() - began:5.1f} s  {matrix.name(run)}")
        except Exception as err:  # every run is tried; the failures are reported together
            failures.append(f"{matrix.name(run)}: {type(err).__name__}: {str(err)[-1500:]}")
    print(f"{len(runs)} runs in {time.monotonic() - started:.0f} s")
    assert not failures, "\n\n".join(failures)
    # the pairs the runs held, as their configs say, cover every pair a run can hold
    required = set().union(*(matrix.pairs(run) for run in runs))
    missing = required - set().union(*(matrix.pairs(held) for held in ran))
    assert not missing, sorted(missing)


def test_the_pairs_validation_refuses_are_refused_before_anything_is_built(the_matrix, mnist_root, tmp_path):
    _, refused, _ = the_matrix
    assert refused  # the matrix asks validation, and validation refuses some pairs (data.normalize, say)
    for i, (pair, message) in enumerate(refused.items()):
        folder = tmp_path / f"refused{i}"
        with pytest.raises(ConfigError) as error:
            train(compose_train(matrix.overrides(dict(pair)), folder, mnist_root))
        GlobalHydra.instance().clear()
        assert all(problem in str(error.value) for problem in message.split("; ")), pair
        assert summary(folder)["status"] == "failed"
        assert not (folder / "checkpoints").exists() and not list(folder.rglob("events.out.tfevents.*"))


def test_every_option_of_the_config_is_in_the_matrix_or_excluded_with_its_reason():
    """A config group option, a schema choice or a switch added to the project must join the matrix (a value
    of a factor) or be excluded with the reason: this test fails until it does."""
    options = matrix.config_options() | matrix.schema_choices()
    for overrides in (
        [],
        *(
            [f"{group}={option}"]
            for group, option in (o.split("=") for o in options)
            if group in ("model", "backbone", "likelihood", "logger", "optimizer", "scheduler")
        ),
    ):
        options |= matrix.switches(OmegaConf.to_container(compose_config(overrides, "/nonexistent"), resolve=False))
    GlobalHydra.instance().clear()
    covered = {key for factor in matrix.FACTORS for key in factor.covers}
    neither = sorted(options - covered - set(matrix.EXCLUDED))
    assert not neither, f"neither a factor's value in tests/matrix.py nor excluded with a reason: {neither}"
    stale = sorted((covered | set(matrix.EXCLUDED)) - options)
    assert not stale, f"tests/matrix.py names options the config no longer has: {stale}"
