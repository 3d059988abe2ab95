"""One process per run folder: a run or a sweep that is running now is never run a second time beside itself.
A second command into its folder (resume=, or the same command by hand) is refused with the holder's name
and changes nothing; once the first has stopped, the continuation goes on as usual."""

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.commands import start_train, train_py
from tests.conftest import TINY
from vae.runs.resume import quoted

PAUSE = ["+callbacks.pause._target_=tests.test_signals.PauseForSigterm", "+callbacks.pause.step=2"]


def paused(process: subprocess.Popen, folder: Path, log: Path) -> None:
    """Waits until the run in ``folder`` pauses at its step 2, alive (tests.test_signals.PauseForSigterm)."""
    deadline = time.monotonic() + 120
    while not (folder / "paused").is_file():
        assert process.poll() is None, f"the run ended before it paused:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "the run never paused"
        time.sleep(0.05)


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.yaml")}


def tiny(tmp_path: Path, mnist_root: Path) -> list[str]:
    return [f"data.root={mnist_root}", f"paths.root_dir={tmp_path}", *TINY, "trainer.max_epochs=2"]


@pytest.mark.slow
def test_a_live_run_is_not_run_again_beside_itself(mnist_root, tmp_path):
    run, log = tmp_path / "run", tmp_path / "run.out"
    args = [*tiny(tmp_path, mnist_root), "callbacks.every_n_epochs=0"]
    with log.open("w") as out:
        process = start_train([*args, *PAUSE, f"hydra.run.dir={run}"], stdout=out, stderr=subprocess.STDOUT)
    try:
        paused(process, run, log)
        before = digest(run)
        for second in (train_py(f"resume={run}"), train_py(*args, *PAUSE, f"hydra.run.dir={run}", "ckpt_path=last")):
            assert second.returncode == 1, second.stderr[-3000:]
            assert f"this run is running now, in process {process.pid} on" in second.stderr
            assert "Wait for it to finish, or stop it" in second.stderr
            assert digest(run) == before  # Hydra's record of the live run (.hydra/config.yaml) untouched
        assert not (run / "attempts").exists()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=60) == 143
    assert json.loads((run / "metrics.json").read_text())["status"] == "interrupted"


@pytest.mark.slow
def test_a_live_sweep_is_not_continued_beside_itself(mnist_root, tmp_path):
    # a folder name Hydra's override parser refuses unquoted: a copy made by a file manager
    sweep, log = tmp_path / "sweep (copy) it's é", tmp_path / "sweep.out"
    first = sweep / "vae-mlp-z2-b1_0"
    args = ["-m", "model.latent_dim=2,3", *tiny(tmp_path, mnist_root), "callbacks.every_n_epochs=0", *PAUSE]
    args += [f"+callbacks.pause.folder={first.name}", f"hydra.sweep.dir={quoted(str(sweep))}"]
    with log.open("w") as out:
        process = start_train(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        paused(process, first, log)
        record = (sweep / "multirun.yaml").read_text()
        for second in (train_py(f"resume={sweep}"), train_py(*args)):
            assert second.returncode == 1, second.stderr[-3000:]
            assert f"this sweep is running now, in process {process.pid} on" in second.stderr
        assert (sweep / "multirun.yaml").read_text() == record and not (first / "attempts").exists()
        assert [p.name for p in sweep.glob("vae-*")] == [first.name]  # the second job not started beside
    finally:
        os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=60) == 143

    again = train_py(f"resume={sweep}")  # stopped now: continued as usual
    assert again.returncode == 0, again.stderr[-3000:]
    summaries = [json.loads((folder / "metrics.json").read_text()) for folder in sorted(sweep.glob("vae-*"))]
    assert [s["status"] for s in summaries] == ["completed", "completed"]
    assert [len(s.get("resumed_from", [])) for s in summaries] == [1, 0]
