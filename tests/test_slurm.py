"""Sweeps on a real SLURM cluster (``hydra/launcher=slurm``), at tiny size: they run whenever a cluster
answers (``scripts/local_slurm.sh start`` gives a one-node one; ``.ci/run`` starts it) and are skipped with
the reason otherwise. Multi-node DDP is not tested: the local cluster has one node."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests import prestarted
from tests.commands import results, start_train, train_py
from tests.conftest import TINY
from tests.tensorboard_events import load_events
from vae.runs.pruning import open_storage
from vae.runs.record import read_record


def _cluster_answers() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    return subprocess.run(["sinfo", "--noheader"], capture_output=True, timeout=30).returncode == 0


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.skipif(not _cluster_answers(), reason="no SLURM cluster answers (scripts/local_slurm.sh start)"),
]

# one CPU a job: two jobs at once on the 2-CPU node of the local cluster
SLURM = ["-m", "hydra/launcher=slurm", "trainer=cpu", "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=5"]


def args(data: Path, sweep: Path, *extra: str) -> list[str]:
    return [*SLURM, f"data.root={data}", f"paths.root_dir={sweep.parent}", *TINY, f"hydra.sweep.dir={sweep}", *extra]


def jobs_of(sweep: Path) -> list[str]:
    """The SLURM jobs that ran, as submitit's folders of their logs say (an array: a task a run)."""
    return sorted(p.name for p in (sweep / ".submitit").iterdir() if p.is_dir() and list(p.glob("*_log.out")))


def test_a_grid_on_slurm_runs_a_job_per_run_records_the_failing_one_and_the_report_reads_it(sweep_data, tmp_path):
    sweep = tmp_path / "sweep"
    done = train_py(*args(sweep_data, sweep, "model.latent_dim=2,0,3", "callbacks.every_n_epochs=0"))
    assert done.returncode != 0  # one job failed
    assert len(jobs_of(sweep)) == 3  # a SLURM job per run (an array of three)
    statuses = [read_record(folder)["status"] for folder in sorted(sweep.glob("vae-*"))]
    assert sorted(statuses) == ["completed", "completed", "failed"]
    (failed,) = [f for f in sweep.glob("vae-*") if read_record(f)["status"] == "failed"]
    assert "model.latent_dim=0: must be a whole number >= 1" in read_record(failed)["error"]
    assert done.stderr.count("keeps no accounting") <= 1 and "Bypassing sacct error" not in done.stderr

    prestarted.run([sys.executable, "-m", "vae.report", str(sweep)], timeout=300, check=True)
    with (sweep / "report.csv").open() as file:
        assert sorted(row["status"] for row in csv.DictReader(file)) == ["completed", "completed", "failed"]


def _slurm_job(sweep: Path, folder: Path, timeout: float = 120) -> str:
    """The SLURM job of a run folder, once the run has paused there (tests.test_signals.PauseForSigterm)."""
    deadline = time.monotonic() + timeout
    while not (folder / "paused").is_file():
        assert time.monotonic() < deadline, "the run never paused"
        time.sleep(0.1)
    return json.loads((folder / ".run.lock").read_text())["slurm_job"]


def test_a_time_limit_mid_epoch_saves_that_step_and_the_requeued_job_continues_it_exactly(sweep_data, tmp_path):
    """A time limit shorter than the training: SLURM warns the job with USR2 (signal_delay_s before the
    limit, at its first check every 30 s from 30 s earlier: here 40 to 70 s into the job, while it waits at
    step 14). The job saves that step, records itself interrupted, and submitit requeues it (max_num_timeout);
    the requeued job continues from that step and ends with the numbers of the same run unbroken, the sweep's
    other job, which finished before any warning. The warning comes no earlier than 40 s: a fresh job reaches
    step 14, and a requeued one its end, before it on a loaded 2-core CPU (with a 1-minute limit and 15 s,
    from 15 s on, a job once got its warning at step 11 and the requeued one a second at step 14)."""
    sweep, step = tmp_path / "sweep", 14  # epoch 1, batch 4 of 10
    pause = ["+callbacks.pause._target_=tests.test_signals.PauseForSigterm", f"+callbacks.pause.step={step}"]
    pause += ["+callbacks.pause.signal=SIGUSR2", "+callbacks.pause.folder=vae-mlp-z20-b1_1"]
    pause += ["+callbacks.pause.timeout=120"]  # until SLURM's warning
    limit = ["hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=50"]
    overrides = ["seed=7,7", "trainer.max_epochs=2", "trainer.limit_train_batches=10", "data.binarize=dynamic"]
    done = train_py(*args(sweep_data, sweep, *overrides, *limit, *pause), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    signalled = sweep / "vae-mlp-z20-b1_1"
    record = read_record(signalled)
    assert record["status"] == "completed"
    assert [r["step"] for r in record["resumed_from"]] == [step]  # the step of the warning, not the epoch's start
    logs = "".join(p.read_text() for p in (sweep / ".submitit").glob("*_1/*_log.*"))
    assert "Caught signal SIGUSR2" in logs and "timed-out" in logs  # warned by the time limit, requeued
    assert results(signalled) == results(sweep / "vae-mlp-z20-b1_0")  # to the last bit
    steps = [event.step for event in load_events(signalled).Scalars("train/loss")]
    assert steps == sorted(set(steps))


def test_ddp_of_two_tasks_through_srun_equals_the_same_run_started_locally(mnist_root, tmp_path):
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "callbacks.every_n_epochs=0"]
    sweep, local = tmp_path / "sweep", tmp_path / "local"
    on_slurm = train_py(*args(mnist_root, sweep, *ddp))  # tasks_per_node follows trainer.devices: 2
    assert on_slurm.returncode == 0, on_slurm.stderr[-3000:]
    (job,) = jobs_of(sweep)
    assert len(list((sweep / ".submitit" / job).glob("*_log.out"))) == 2  # submitit's log of each task: two
    run_locally = [f"data.root={mnist_root}", f"paths.root_dir={tmp_path}", *TINY, *ddp, f"hydra.run.dir={local}"]
    assert train_py(*run_locally).returncode == 0
    (folder,) = sweep.glob("vae-*")
    assert results(folder) == results(local)


def test_a_request_no_node_can_hold_is_refused_before_anything_is_submitted(mnist_root, tmp_path):
    sweep = tmp_path / "sweep"
    started = time.monotonic()
    refused = train_py(*args(mnist_root, sweep, "hydra.launcher.cpus_per_task=64", "hydra.launcher.mem_gb=100000"))
    assert refused.returncode == 1 and time.monotonic() - started < 60
    assert "nothing was submitted" in refused.stderr
    assert "hydra.launcher.cpus_per_task=64 x tasks_per_node=1 asks 64 CPUs of a node" in refused.stderr
    assert "hydra.launcher.mem_gb=100000 asks" in refused.stderr
    assert not (sweep / ".submitit").exists() and not (sweep / ".sweep.lock").exists()  # nothing written


def test_a_sweep_whose_driver_died_waits_for_its_live_jobs_and_submits_nothing_twice(sweep_data, tmp_path):
    """The sweep command killed while its SLURM jobs run or wait in the queue (a closed SSH session): SLURM
    goes on with them. resume= waits for every job of the sweep still queued or running, then finds their
    runs finished: it moves no live run's files aside and submits nothing again."""
    sweep = tmp_path / "sweep"
    folders = [sweep / "vae-mlp-z2-b1_0", sweep / "vae-mlp-z3-b1_1", sweep / "vae-mlp-z4-b1_2"]
    pause = ["+callbacks.pause._target_=tests.test_signals.PauseForSigterm", "+callbacks.pause.step=2"]
    pause += ["+callbacks.pause.timeout=12", f"+callbacks.pause.folder='{folders[0].name},{folders[1].name}'"]
    driver = start_train(args(sweep_data, sweep, "model.latent_dim=2,3,4", *pause), stdout=subprocess.DEVNULL)
    running = [_slurm_job(sweep, folder) for folder in folders[:2]]  # paused 12 s, one CPU each: the node full
    os.killpg(driver.pid, signal.SIGKILL)  # the driver dies; its jobs go on
    driver.wait()
    queued = _queued()
    assert set(running) <= set(queued) and len(queued) == 3  # two running, the third pending

    again = train_py(f"resume={sweep}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "waiting for SLURM job(s)" in again.stdout + again.stderr
    assert [read_record(folder)["status"] for folder in folders] == ["completed"] * 3
    assert not any((folder / "attempts").exists() for folder in folders)  # no live run's files moved aside
    assert not any(read_record(folder).get("resumed_from") for folder in folders)  # each trained once
    assert len(jobs_of(sweep)) == 3  # nothing submitted again
    last = json.loads((sweep / "launches.json").read_text())[-1]
    assert sorted(last["jobs"].values()) == ["skipped"] * 3


def _queued() -> list[str]:
    """Every job SLURM holds, running or pending (array tasks one by one)."""
    listed = subprocess.run(["squeue", "--noheader", "--array", "--format=%i"], capture_output=True, text=True)
    return listed.stdout.split()


def test_a_search_on_slurm_runs_its_trials_side_by_side_in_a_journal_and_survives_its_driver(sweep_data, tmp_path):
    """hparams_search with n_jobs=2: two trials at once as SLURM jobs, the study in Optuna's journal file
    (sweep folders of clusters sit on shared file systems, where SQLite's locking is unreliable). Its driver
    killed while they run, resume= waits for them and tells the study how they ended."""
    sweep = tmp_path / "search"
    search = [
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.pruner=null",
    ]
    pause = ["+callbacks.pause._target_=tests.test_signals.PauseForSigterm", "+callbacks.pause.step=2"]
    driver = start_train([*args(sweep_data, sweep, *search, *pause, "+callbacks.pause.timeout=10")])
    deadline = time.monotonic() + 120
    while len(list(sweep.glob("*_[01]/paused"))) < 2:  # both trials paused at once: side by side
        assert time.monotonic() < deadline and driver.poll() is None, "the trials never ran side by side"
        time.sleep(0.1)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()

    again = train_py(f"resume={sweep}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (sweep / "optuna.journal").is_file() and not (sweep / "optuna.db").exists()
    study = optuna.load_study(study_name="vae_mnist", storage=open_storage(f"journal:{sweep / 'optuna.journal'}"))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2  # no third trial, none left running
    assert len(jobs_of(sweep)) == 2  # nothing submitted again
    folders = sorted(sweep.glob("*_[01]"))
    assert [read_record(f)["status"] for f in folders] == ["completed"] * 2
    assert not any(read_record(f).get("resumed_from") for f in folders)
