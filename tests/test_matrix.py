"""Every configuration validation accepts runs to the end; every other is refused before anything is built.

The runs are a pairwise covering set of the option space (``tests/matrix.py``): model, backbone,
likelihood, binarization, normalization, image size, data path, precision, processes, evaluation
and sampling. Each trains a few batches, validates, tests, evaluates, then resumes from its last
checkpoint for one more epoch, at tiny size; multi-process runs go through ``python train.py`` as
users launch them.
"""

import json
import logging
import math
import sys
from pathlib import Path

import pytest
import torch

from tests import matrix
from tests.commands import run_in_group
from tests.conftest import TINY, compose_train
from vae.config import ConfigError
from vae.training import train

# What the evaluation measures, at tiny size: a handful of importance samples and draws.
TINY_EVALUATION = ["evaluation.nll.k=4", "evaluation.samples=64", "evaluation.silhouette_sample=20"]
RUNS = matrix.covering_set()


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def check_completed(run_dir: Path, epochs: int, evaluated: bool) -> None:
    """The run ended as completed, with finite metrics, after ``epochs`` epochs, evaluated if asked."""
    record = summary(run_dir)
    assert record["status"] == "completed", record.get("error")
    assert record["metrics"] and all(math.isfinite(v) for v in record["metrics"].values()), record["metrics"]
    assert any(name.startswith("test/") for name in record["metrics"])
    assert ("samples/fid" in record["metrics"]) == evaluated
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == epochs - 1


def run_in_process(overrides: list[str], run_dir: Path, mnist_root: Path) -> str:
    """Trains in this process; returns what Lightning logged."""
    lines, handler = [], logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    lightning_log = logging.getLogger("lightning.pytorch")  # it does not propagate to the root logger
    lightning_log.addHandler(handler)
    try:
        train(compose_train(overrides, run_dir, mnist_root))
    finally:
        lightning_log.removeHandler(handler)
    return "\n".join(lines)


def run_as_command(overrides: list[str], run_dir: Path, mnist_root: Path) -> str:
    """``python train.py`` with its ranks in one process group, all killed if it hangs; returns its output."""
    paths = [f"data.root={mnist_root}", f"paths.root_dir={run_dir.parent}", f"hydra.run.dir={run_dir}"]
    result = run_in_group([sys.executable, "train.py", *TINY, *overrides, *paths])
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("run", RUNS, ids=[matrix.name(run) for run in RUNS])
def test_an_accepted_combination_trains_tests_evaluates_and_resumes(run, mnist_root, tmp_path):
    launch = run_as_command if run["processes"] > 1 else run_in_process
    overrides, run_dir = [*matrix.overrides(run), *TINY_EVALUATION], tmp_path / "run"
    evaluated = run["evaluation"] != "none"
    launch(overrides, run_dir, mnist_root)
    check_completed(run_dir, epochs=1, evaluated=evaluated)
    resume = [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=2"]
    output = launch([*overrides, *resume], run_dir, mnist_root)
    assert "Restoring states from the checkpoint" in output  # resumed, not started again
    check_completed(run_dir, epochs=2, evaluated=evaluated)


@pytest.mark.parametrize(("combination", "word"), matrix.REFUSED, ids=[str(c) for c, _ in matrix.REFUSED])
def test_a_refused_combination_is_refused_before_anything_is_built(combination, word, mnist_root, tmp_path):
    run = {key: values[0] for key, values in matrix.FACTORS.items()} | combination
    cfg = compose_train(matrix.overrides(run), tmp_path, mnist_root)
    with pytest.raises(ConfigError, match=word):
        train(cfg)
    assert summary(tmp_path)["status"] == "failed"
    assert not (tmp_path / "checkpoints").exists() and not list(tmp_path.rglob("events.out.tfevents.*"))


def test_the_runs_cover_every_pair_of_option_values_a_valid_run_can_hold():
    required = set().union(*(matrix.pairs(run) for run in matrix.valid_runs()))
    covered = set().union(*(matrix.pairs(run) for run in RUNS))
    assert required <= covered
    assert all(matrix.composes(run) and not matrix.refused(run) for run in RUNS)
    # pairs a GAN would only seem to cover (it ignores the likelihood) are held by models that use it
    assert any(run["model"] != "gan" and run["likelihood"] == "gaussian" and not run["normalize"] for run in RUNS)
    # a pair validation refuses is never among the required ones
    assert (("likelihood", "bernoulli"), ("normalize", True)) not in required
