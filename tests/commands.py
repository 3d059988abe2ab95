"""train.py as users launch it, for tests that kill and resume real runs (each its own process: tests/prestarted.py)."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests import prestarted
from tests.idx import write_mnist

PROJECT = prestarted.PROJECT


def start_train(args: list[str], **popen) -> subprocess.Popen:
    """``python train.py args`` in its own process group: under DDP Lightning starts the other ranks as
    children of rank 0, and a kill must reach them all."""
    return prestarted.popen([sys.executable, "train.py", *args], **popen)


def run_in_group(command: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    """``command`` in the project folder and its own process group, stdout and stderr together in
    ``stdout``; on a timeout (a hung rank) the whole group is killed and the test fails."""
    process = prestarted.popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # ranks: its children
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"no result after {timeout} s, a rank hung:\n{output[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, output)


def kill_after_first_checkpoint(process: subprocess.Popen, run: Path, log: Path | None = None, epoch: int = 1) -> None:
    """SIGKILL to the run's process group as soon as last.ckpt holds an epoch >= ``epoch``, i.e. while the
    next one trains."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        output = f":\n{log.read_text()[-3000:]}" if log else ""
        assert process.poll() is None, f"the run ended before it could be killed{output}"
        last = run / "checkpoints" / "last.ckpt"
        if last.is_file() and torch.load(last, weights_only=True)["epoch"] >= epoch:
            os.killpg(process.pid, signal.SIGKILL)
            return
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


def killable_run(root: Path, n_train: int, n_test: int, val_size: int) -> list[str]:
    """Overrides of a run on tiny files of its own under ``root`` (16-image batches, dynamic binarization:
    noise that a resumed run must draw again exactly), for the tests that kill runs and continue them."""
    write_mnist(root / "data", n_train=n_train, n_test=n_test)
    return [
        f"data.root={root / 'data'}",
        "data.verify=header",
        f"data.val_size={val_size}",
        "data.batch_size=16",
        "data.binarize=dynamic",  # noise from the generators: resuming must restore them
        f"paths.root_dir={root}",
    ]


def kill_mid_run(overrides: list[str], run: Path, log: Path | None = None) -> None:
    """``python train.py overrides`` into ``run``, killed (SIGKILL) while its second epoch trains."""
    output = open(log, "w") if log else subprocess.DEVNULL  # a file, not a pipe: nothing reads it meanwhile
    try:
        process = start_train([*overrides, f"hydra.run.dir={run}"], stdout=output, stderr=subprocess.STDOUT)
        kill_after_first_checkpoint(process, run, log)
    finally:
        if log:
            output.close()
    assert process.wait() == -9
    assert json.loads((run / "metrics.json").read_text())["status"] == "running"  # what a kill leaves


def continue_like(run: Path, unbroken: Path) -> str:
    """``python train.py resume=run``: it restores the checkpoint and ends with the unbroken run's numbers, to
    the last bit. Returns its output."""
    resumed = start_train([f"resume={run}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output[-3000:]
    assert "Restoring states from the checkpoint" in output
    assert results(run) == results(unbroken)
    return output


def results(run: Path) -> dict[str, float]:
    """The run's recorded validation and test metrics (timings left out: they differ between runs)."""
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    return {name: value for name, value in metrics.items() if not name.startswith("perf/")}


def train_py(*args: str, timeout: float | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """``python train.py args`` to its end, its output captured."""
    return prestarted.run([sys.executable, "train.py", *args], timeout=timeout, check=check)


def fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file of a folder: its hash and modification time."""
    return {
        str(path.relative_to(folder)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
