"""train.py as users launch it, for tests that kill and resume real runs."""

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

PROJECT = Path(__file__).resolve().parents[1]


def start_train(args: list[str], **popen) -> subprocess.Popen:
    """``python train.py args`` in its own process group: under DDP Lightning starts the other ranks as
    children of rank 0, and a kill must reach them all."""
    return subprocess.Popen(
        [sys.executable, "train.py", *args], cwd=PROJECT, start_new_session=True, text=True, **popen
    )


def run_in_group(command: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    """``command`` in the project folder and its own process group, stdout and stderr together in
    ``stdout``; on a timeout (a hung rank) the whole group is killed and the test fails."""
    process = subprocess.Popen(
        command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )  # Lightning starts the other ranks as its children
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


def results(run: Path) -> dict[str, float]:
    """The run's recorded validation and test metrics (timings left out: they differ between runs)."""
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    return {name: value for name, value in metrics.items() if not name.startswith("perf/")}


def train_py(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """``python train.py args`` to its end, its output captured."""
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=PROJECT, capture_output=True, text=True, timeout=timeout
    )


def fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file of a folder: its hash and modification time."""
    return {
        str(path.relative_to(folder)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
