"""SIGTERM at any moment of a run (training, validation, test, the evaluation after them): the run records
itself interrupted, exits with 143, and continued in its folder ends with the numbers of an unbroken run.
DDP processes signalled all at once: tests/test_ddp_data.py."""

import logging
import os
import signal
import time

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

import vae.training
from tests.commands import results
from tests.conftest import compose_train
from tests.tensorboard_events import load_events
from vae.runs.record import read_record
from vae.training import train

RUN = [
    "trainer.max_epochs=2",  # 3 batches an epoch (TINY): step 4 is the first batch of the second epoch
    "data.binarize=dynamic",  # noise drawn by the loader: a continuation must draw what an unbroken run does
    "+callbacks.sigterm._target_=tests.helpers.SigtermFromEnv",  # SIGTERM where $VAE_TEST_SIGTERM says
]
EVALUATED = ["evaluation.metrics=cheap", "evaluation.samples=64", "evaluation.silhouette_sample=20"]


def run(folder, mnist_root, overrides) -> None:
    try:
        train(compose_train([*RUN, *overrides], folder, mnist_root))
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.parametrize(
    ("moment", "stopped_at"),
    [("train:4", 4), ("validation:0", 4), ("test", 6), ("evaluation", 6)],
    ids=["training", "validation", "test", "evaluation"],
)
def test_sigterm_at_any_moment_is_recorded_exits_143_and_the_run_continues_exactly(
    moment, stopped_at, mnist_root, tmp_path, monkeypatch, caplog
):
    overrides = EVALUATED if moment == "evaluation" else []
    caplog.set_level(logging.INFO, logger="vae.callbacks.checkpoint")
    run(tmp_path / "unbroken", mnist_root, overrides)
    if moment == "evaluation":  # SIGTERM as the evaluation after the test starts: outside Lightning's loops
        evaluate = vae.training.evaluate_checkpoint

        def interrupted_evaluation(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)
            return evaluate(*args, **kwargs)

        monkeypatch.setattr(vae.training, "evaluate_checkpoint", interrupted_evaluation)
    else:
        monkeypatch.setenv("VAE_TEST_SIGTERM", moment)

    stopped = tmp_path / "stopped"
    with pytest.raises(SystemExit) as end:
        run(stopped, mnist_root, overrides)
    assert end.value.code == 143
    record = read_record(stopped)
    assert record["status"] == "interrupted"
    # stopped where it can continue from: the step of the signal (validation: the first after it ended and
    # its epoch's checkpoints were written), or training's last checkpoint, after its 6 steps
    checkpoint = torch.load(record["last_checkpoint"], weights_only=True)
    assert checkpoint["global_step"] == stopped_at
    if moment == "train:4":  # mid-epoch: the loops and the loader are saved at the batch they had reached
        assert checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["completed"] == 1
        assert checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"served": 1}]
        states = [state for key, state in checkpoint["callbacks"].items() if "'monitor': None" in key]
        assert [state["best_model_path"] for state in states] == [record["last_checkpoint"]]  # train() reads it
        assert f"SIGTERM: saved {record['last_checkpoint']} at epoch 1, batch 1 of 3, step 4" in caplog.text

    monkeypatch.undo()
    started = time.monotonic()
    run(stopped, mnist_root, overrides)  # the same command: the folder's record continues it
    record = read_record(stopped)
    assert record["status"] == "completed"
    if stopped_at < 6:  # it trained again: its epoch is timed from the continuation, not from 0
        assert 0 < record["metrics"]["perf/train_epoch_s"] < time.monotonic() - started
    assert results(stopped) == results(tmp_path / "unbroken")  # the same numbers, to the last bit
    steps = [event.step for event in load_events(stopped).Scalars("train/loss")]
    assert (
        steps
        == sorted(set(steps))
        == [event.step for event in load_events(tmp_path / "unbroken").Scalars("train/loss")]
    )


@pytest.mark.parametrize("logger", ["csv", "many"])
def test_a_sweep_job_interrupted_and_continued_again_and_again_is_never_refused(
    logger, mnist_root, tmp_path, monkeypatch
):
    """Keys the framework writes into a logger's config to continue its logs (the CSV logger's and
    TensorBoard's purge_step, MLflow's run_id) are not the user's settings: the continuation of a
    continuation is the same run."""
    if logger == "many":
        pytest.importorskip("mlflow")
    job = ["hydra.mode=MULTIRUN", f"logger={logger}", "trainer.max_epochs=3"]
    run(tmp_path / "unbroken", mnist_root, job)
    for step in (2, 5):  # interrupted, continued and interrupted again (mid-epoch both times)
        monkeypatch.setenv("VAE_TEST_SIGTERM", f"train:{step}")
        with pytest.raises(SystemExit):
            run(tmp_path / "job", mnist_root, job)
        assert read_record(tmp_path / "job")["status"] == "interrupted"
    run(tmp_path / "job", mnist_root, job)
    record = read_record(tmp_path / "job")
    assert record["status"] == "completed" and [r["step"] for r in record["resumed_from"]] == [2, 5]
    assert results(tmp_path / "job") == results(tmp_path / "unbroken")
