"""The benchmark suite runs end to end (speed itself is never asserted in tests)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_speed_benchmark_writes_every_row(mnist_root, tmp_path):
    out = tmp_path / "bench.json"
    command = [sys.executable, "benchmarks/train_speed.py", "--backbones", "mlp", "--epochs", "1", "--repeats", "1"]
    command += ["--data-root", str(mnist_root), "--cache-dir", str(tmp_path / "cache"), "--iw-k", "20"]
    command += ["--iw-images", "4", "--out", str(out), "--verify", "header"]
    command += ["--override", "data.val_size=40", "data.verify=header", f"paths.root_dir={tmp_path}"]
    result = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = report["training"]["mlp"]
    assert set(rows) == {"a", "b", "c", "d"}
    assert rows["a"]["images_per_epoch"] == 80 and rows["c"]["images_per_epoch"] == 120  # split vs whole file
    assert rows["d"]["time_vs_d"] == 1.0 and all(r["images_per_s"] > 0 for r in rows.values())
    assert report["iw_nll"]["finite"] and report["iw_nll"]["k"] == 20
    assert "| mlp | (a) framework, tensor path |" in result.stdout
