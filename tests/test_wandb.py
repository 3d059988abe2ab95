"""logger=wandb: each run a W&B offline run, read back from its transaction log (tests/wandb_records.py): the
scalars TensorBoard gets at the same steps, the same pictures, the hyperparameters, one id across a resumed
run, one group per sweep, and ``wandb sync`` finding the runs."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.commands import train_py
from tests.conftest import TINY, TINY_EVALUATION, train_in
from tests.tensorboard_events import load_events
from vae.utils.loggers import wandb_run_id

pytest.importorskip("wandb")  # the [wandb] extra; make install and CI install it
from tests.wandb_records import offline_run  # noqa: E402 (needs wandb)

BATCHES = 3  # training batches per epoch (TINY)
INTERNAL = ("_step", "_timestamp", "_runtime", "trainer/global_step")


def run_in(folder: Path, mnist_root: Path, *overrides: str) -> None:
    train_in(folder, mnist_root, "logger=[tensorboard,wandb]", "seed=0", *overrides)


@pytest.fixture(scope="module")
def continued(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> Path:
    """A run of 1 epoch, continued in its folder to 2 from its last checkpoint, then evaluated: two processes'
    W&B runs."""
    folder = tmp_path_factory.mktemp("run")
    run_in(folder, mnist_root)
    run_in(folder, mnist_root, "trainer.max_epochs=2", "ckpt_path=last", "evaluation.metrics=cheap", *TINY_EVALUATION)
    return folder


def scalars(history: list[dict]) -> dict[tuple[str, int], float]:
    """``(tag, trainer step): value`` of every number logged, but an image's own numbers (its width, ...)."""
    found = {}
    for row in history:
        images = {key.removesuffix("/_type") for key in row if key.endswith("/_type")}
        for key, value in row.items():
            if key not in INTERNAL and isinstance(value, int | float) and key.rpartition("/")[0] not in images:
                found[(key, row["trainer/global_step"])] = value
    return found


def pictures(history: list[dict]) -> set[tuple[str, int]]:
    return {
        (key.removesuffix("/_type"), row["trainer/global_step"])
        for row in history
        for key, value in row.items()
        if key.endswith("/_type") and value == "images/separated"
    }


def test_a_resumed_run_keeps_its_id_name_and_project(continued):
    first, second = offline_run(continued)  # one offline folder per process
    assert first["id"] == second["id"] == wandb_run_id(continued)
    assert first["name"] == second["name"] == "vae-mlp-z20-b1"
    assert first["project"] == "vae-mnist" and first["group"] == ""  # a single run has no group


def test_wandb_gets_every_scalar_tensorboard_gets_at_its_step(continued):
    first, second = offline_run(continued)
    # TensorBoard dropped what the first process logged from the checkpoint (the end of epoch 0) on, as the
    # second logged it again; W&B cannot delete, so the first run still holds its test values
    expected = {tag: v for tag, v in scalars(first["history"]).items() if tag[1] < BATCHES} | scalars(second["history"])
    events = load_events(continued)
    logged = {(tag, event.step): event.value for tag in events.Tags()["scalars"] for event in events.Scalars(tag)}
    assert set(logged) == set(expected)
    assert {"train/loss", "val/loss", "val/kl", "test/loss", "samples/fid"} <= {tag for tag, _ in logged}
    assert all(logged[key] == pytest.approx(value, rel=1e-6) for key, value in expected.items())


def test_wandb_gets_every_picture_tensorboard_gets(continued):
    first, second = offline_run(continued)
    events = load_events(continued)
    shown = {(tag, event.step) for tag in events.Tags()["images"] for event in events.Images(tag)}
    assert pictures(first["history"]) | pictures(second["history"]) == shown
    assert {"images/reconstructions", "images/prior_samples", "eval/confusion"} <= {tag for tag, _ in shown}

    def digests(files):
        return sorted(hashlib.sha256(path.read_bytes()).hexdigest() for path in files)

    # the PNGs of the run folder, byte for byte (each epoch's of the first process, the second's again)
    in_wandb = digests([*first["images"], *second["images"]])
    assert set(in_wandb) == set(digests(continued.glob("images/*/*.png")))
    assert len(in_wandb) >= len(list(continued.glob("images/*/*.png")))


def test_wandb_holds_the_run_s_hyperparameters(continued):
    config = offline_run(continued)[0]["config"]
    assert config["model"] == "vae" and config["model.latent_dim"] == 20 and config["trainer.max_epochs"] == 1
    assert config["backbone"] == "mlp" and config["likelihood"] == "bernoulli"


@pytest.mark.slow
def test_the_runs_of_a_sweep_share_its_group_and_wandb_sync_finds_them(mnist_root, tmp_path):
    sweep = tmp_path / "sweep_a"
    args = ["-m", "logger=wandb", "model.latent_dim=2,3", f"data.root={mnist_root}", f"paths.root_dir={tmp_path}"]
    train_py(*args, *TINY, "callbacks.every_n_epochs=0", f"hydra.sweep.dir={sweep}", check=True)
    runs = [run for folder in sorted(sweep.glob("*_[0-9]")) for run in offline_run(folder)]
    assert [run["name"] for run in runs] == ["vae-mlp-z2-b1", "vae-mlp-z3-b1"]
    assert {run["group"] for run in runs} == {"sweep_a"} and len({run["id"] for run in runs}) == 2
    folders = [str(run["folder"]) for run in runs]
    wandb_cli = Path(sys.executable).parent / "wandb"
    found = subprocess.run([wandb_cli, "sync", "--dry-run", *folders], capture_output=True, text=True, check=True)
    assert "Would sync 2 run(s)" in found.stdout + found.stderr
