"""Shared fixtures: tiny data files and the real Hydra config pointed at a temporary folder."""

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.idx import write_mnist

if TYPE_CHECKING:
    from omegaconf import DictConfig

# pytest-xdist's controller loads this file too, before it starts the workers, and runs no test: torch,
# Lightning and the project are imported where they are used, so the workers start about 6 s sooner.

# The suite runs on as many pytest workers as the machine has cores (pytest-xdist, pyproject.toml): each
# worker and the processes it starts compute on one thread, as threads of several workers on shared cores
# wait on each other (far more than twice slower).
if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


# The longest files, longest first (their times on a 2-core CPU, pytest --durations): the SLURM tests (3.5 min with
# a cluster up, mostly waiting on it), the configuration matrix (3), then 2.3 down to 0.3. A file missing here
# runs after them, in its usual order; the order changes how long the suite takes, never what it tests.
LONGEST_FIRST = [
    "test_slurm", "test_matrix", "test_train", "test_benchmarks", "test_sweeps", "test_ddp_data", "test_search",
    "test_resume", "test_validation", "test_evaluation", "test_sigterm", "test_ddp_models", "test_launchers",
]  # fmt: skip


def pytest_collection_modifyitems(items: list) -> None:
    """The longest files first: pytest-xdist gives files to its workers in this order (its own reordering, by the
    number of tests, is off: pyproject.toml), so no worker is left running a long file alone at the end."""
    rank = {f"tests.{name}": i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.module.__name__, len(rank)))


def pytest_terminal_summary(terminalreporter) -> None:
    """How many SLURM tests ran: they are skipped, with the reason, where no cluster answers."""
    reports = [r for kind in ("passed", "failed", "skipped") for r in terminalreporter.stats.get(kind, [])]
    slurm = [r for r in reports if r.when in ("call", "setup") and "test_slurm.py" in r.nodeid]
    ran = {r.nodeid for r in slurm if r.when == "call"}
    skipped = {r.nodeid for r in slurm if r.skipped}
    terminalreporter.write_line(f"SLURM tests: {len(ran)} ran, {len(skipped)} skipped")


# Small enough for a 2-core CPU, large enough for every stage and callback to do real work.
TINY = [
    "data.verify=header",  # the tiny files are not the official ones: check their structure only
    "data.val_size=40",
    "data.batch_size=16",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=1",
    "callbacks.latent_scatter.n_points=40",
    "callbacks.latent_traversal.n_points=40",
]
# What the evaluation measures in a tiny run: a few importance samples, draws and silhouette points.
TINY_EVALUATION = ["evaluation.nll.k=4", "evaluation.samples=50", "evaluation.silhouette_sample=40"]


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding tiny extracted MNIST and Fashion-MNIST files (120 train, 40 test images each)."""
    root = tmp_path_factory.mktemp("data")
    write_mnist(root)
    write_mnist(root, name="FashionMNIST", seed=1)
    return root


@pytest.fixture(scope="session")
def sweep_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder of 400 training images: 10 batches of 16 an epoch, for sweeps killed mid-run."""
    root = tmp_path_factory.mktemp("sweep_data")
    write_mnist(root, n_train=400, n_test=40)
    return root


def compose_train(
    overrides: list[str], output_dir: Path, mnist_root: Path, base: list[str] = TINY, root_dir: Path | None = None
) -> "DictConfig":
    """The train.yaml config as Hydra composes it, with ``base`` settings and ``output_dir`` as run folder, in the
    project folder ``root_dir`` (its logs/, the MLflow store; the run folder itself by default)."""
    from vae.utils import compose_config

    paths = [f"data.root={mnist_root}", f"paths.root_dir={root_dir or output_dir}"]
    return compose_config([*paths, *base, *overrides], output_dir)


def train_in(folder: Path, mnist_root: Path, *overrides: str) -> None:
    """A tiny run in ``folder``, trained in this process (``vae.training.train``) to its end."""
    from hydra.core.global_hydra import GlobalHydra

    from vae.training import train

    try:
        train(compose_train(list(overrides), folder, mnist_root))
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture
def make_cfg(tmp_path: Path, mnist_root: Path):
    """``make_cfg(*overrides)``: a composed training config writing into ``tmp_path``."""
    from hydra.core.global_hydra import GlobalHydra

    yield lambda *overrides: compose_train(list(overrides), tmp_path, mnist_root)
    GlobalHydra.instance().clear()
