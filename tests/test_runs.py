"""The runs package in small: the lock of a folder and who holds it, resume= for any folder name, the launches
record under concurrent writers, the MLflow run of a folder, and what a refusal leaves behind."""

import json
import multiprocessing
import os
import socket
import subprocess
import sys

import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from tests.conftest import compose_train
from vae.config import ConfigError
from vae.runs.launches import read_launches, record_launch
from vae.runs.lock import RUN_LOCK, FolderIsLive, FolderLock, Holder, holder_if_live
from vae.runs.record import read_record
from vae.runs.resume import quoted
from vae.training import train

HOSTILE = ["sweep (copy)", 'it\'s a "test", é', "a=b [1] {2}", "back\\slash\\", "${x}"]


def leave_lock(folder, **holder) -> None:
    """A lock file as a holder that is gone left it: its record, no flock."""
    folder.mkdir(parents=True, exist_ok=True)
    me = Holder.this_process()
    (folder / RUN_LOCK).write_text(json.dumps(me.__dict__ | holder))


def test_a_held_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    with FolderLock(tmp_path):
        live = holder_if_live(tmp_path)
        assert live is not None and live[0].pid == os.getpid()
        with pytest.raises(FolderIsLive, match=f"is running now, in process {os.getpid()} on {socket.gethostname()}"):
            FolderLock(tmp_path).acquire()
    assert holder_if_live(tmp_path) is None and (tmp_path / RUN_LOCK).read_text() == ""  # released cleanly


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leave_lock(tmp_path, pid=int(dead.stdout), process_start=None)
    assert holder_if_live(tmp_path) is None
    with FolderLock(tmp_path):
        assert json.loads((tmp_path / RUN_LOCK).read_text())["pid"] == os.getpid()


def test_a_lock_left_from_another_host_is_never_taken_over_on_a_guess(tmp_path, monkeypatch):
    leave_lock(tmp_path, host="node-17", pid=4242, slurm_job="311")
    live = holder_if_live(tmp_path)
    assert live is not None and "on another host: this machine cannot tell whether it still runs" in live[1]
    with pytest.raises(FolderIsLive, match="process 4242 on node-17, SLURM job 311"):
        FolderLock(tmp_path).acquire()
    monkeypatch.setenv("SLURM_JOB_ID", "311")  # the same job, requeued by SLURM: its earlier run is over
    with FolderLock(tmp_path):
        pass


def test_a_folder_without_a_lock_file_is_probed_without_writing_anything(tmp_path):
    assert holder_if_live(tmp_path) is None and list(tmp_path.iterdir()) == []


def _launch(sweep, name: str, ready=None, go=None) -> None:
    if ready is not None:  # a spawned writer: its imports done, it waits to start with the other
        ready.set()
        go.wait(timeout=120)
    for i in range(40):
        record_launch(sweep, f"{name}-{i}", {"job": "new"})


def test_launches_written_by_two_processes_at_once_are_all_kept(tmp_path):
    # this process and a spawned one, started at the same moment once the other has made its imports (10 s of
    # CPU a process here, over before the first write)
    context = multiprocessing.get_context("spawn")
    ready, go = context.Event(), context.Event()
    writer = context.Process(target=_launch, args=(tmp_path, "b", ready, go))
    writer.start()
    assert ready.wait(timeout=120)
    go.set()
    _launch(tmp_path, "a")
    writer.join(timeout=120)
    assert writer.exitcode == 0
    assert sorted(launch["started"] for launch in read_launches(tmp_path)) == sorted(
        f"{name}-{i}" for name in ("a", "b") for i in range(40)
    )


@pytest.mark.parametrize("name", HOSTILE)
def test_a_quoted_folder_reads_back_as_itself_in_a_hydra_override(tmp_path, name):
    folder = str(tmp_path / name)
    (override,) = OverridesParser.create().parse_overrides([f"hydra.run.dir={quoted(folder)}"])
    assert override.value() == folder.replace("${", "\\${")  # OmegaConf reads \${ as the characters ${
    assert not override.is_sweep_override()


def test_the_mlflow_run_of_a_folder_is_found_whatever_its_name(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from vae.utils.loggers import mlflow_run_of

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("vae-mnist", artifact_location=str(tmp_path / "artifacts"))
    runs = {}
    for name in [*HOSTILE, "plain"]:
        folder = str(tmp_path / name)
        runs[folder] = client.create_run(experiment, tags={"run_folder": folder}).info.run_id
    for folder, run_id in runs.items():
        assert mlflow_run_of(uri, "vae-mnist", folder) == run_id, folder


def test_a_refused_job_leaves_the_finished_run_of_its_folder_as_it_was(mnist_root, tmp_path):
    """A sweep job (a requeued one, or one of any sweeper) whose folder holds a run of other settings is
    refused, and the finished run's record and files stay as they were."""

    def job(*overrides: str):
        cfg = compose_train(["hydra.mode=MULTIRUN", *overrides], tmp_path, mnist_root)
        try:
            return train(cfg)
        finally:
            GlobalHydra.instance().clear()

    job()
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    with pytest.raises(ConfigError, match="holds a run of other settings"):
        job("model.latent_dim=3")
    assert read_record(tmp_path)["status"] == "completed"
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
