"""Every check that needs a GPU, in one go (planned to fit 8 minutes on one H100), for a machine with CUDA.

Steps: the tests marked ``gpu`` (no host sync in a training step, bf16-mixed, compile and channels_last on
the conv model, the tensor path on the device); the rows of ``train_speed.py`` on CUDA (with compile);
the whole-process benchmark; the 12-run sweep, sequential against parallel; the k=5000 importance-
weighted NLL of a freshly trained checkpoint. Each step's status, time and results go into one JSON
(``<out>/gpu_check.json``), and their output into ``<out>/gpu_check.log``.

    python -m benchmarks.gpu_check --data-root /path/to/data       # on the GPU machine
    python -m benchmarks.gpu_check --dry-run     # the same steps on this CPU, tiny, CUDA parts skipped

Where Python lacks Hydra (a GPU machine with torch and Lightning only), wheels carried in ``.whl/``
(hydra-core, omegaconf, antlr4-python3-runtime, optuna and its needs; google-crc32c, without which TensorBoard's
writer keeps its slower checksum) are installed into a folder of their own first, and every step runs with it on
``PYTHONPATH``.
"""

import argparse
import functools
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.idx import write_mnist

PROJECT = Path(__file__).resolve().parents[1]
TINY = [  # a CPU dry run: every step, on a few images
    "data.verify=header", "data.val_size=40", "data.batch_size=16", "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2", "trainer.limit_test_batches=2", "callbacks.latent_scatter.n_points=40",
    "callbacks.latent_traversal.n_points=40",
]  # fmt: skip


def steps(out: Path, data: Path, dry: bool) -> list[tuple[str, list[str], int]]:
    """(name, command, timeout in seconds) of each step."""
    python = sys.executable
    device = "cpu" if dry else "cuda"
    trainer = ["trainer.accelerator=cpu"] if dry else ["trainer=gpu"]
    overrides = [f"data.root={data}", *(TINY if dry else [])]
    run = out / "nll_run"
    # train_speed draws no pictures, and times whole epochs: of the split for its framework rows, of the file for
    # the plain loops (tests/test_benchmarks.py reads the two counts back)
    drawn_off = [o for o in overrides[1:] if not o.startswith(("callbacks.", "trainer.limit_train_batches"))]
    # every row on the CPU (tests/test_benchmarks.py reads them back); the framework's and the floor's on a GPU
    speed = ["--backbones", "mlp", "--epochs", "1", "--repeats", "1", "--iw-k", "20"]
    speed += ["--iw-images", "4", "--verify", "header"] if dry else ["--rows", "a", "d", "--compile", "--repeats", "3"]
    # the floor, training batches alone and a default epoch, each in fresh processes, without row (D), the profiled
    # pictures (tests/test_benchmarks.py reads a real profiler table); a tiny run's epochs are too short to pass
    # the consistency check, so its figures are written anyway (and marked)
    whole = ["--repeats", "1", "--long", "2", "--train-images", "80", "--verify", "header", "--report-inconsistent"]
    whole = [*(whole if dry else ["--repeats", "3", "--long", "3"]), "--no-pictures"]
    grid = ["--grid", "model.latent_dim=2,3", "--n-jobs", "2"] if dry else ["--n-jobs", "6"]
    # one pytest process (-n 0): the GPU tests share one device, and xdist's workers cost 10 s to start on a CPU
    gpu_tests = [python, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-m", "gpu", "tests/test_gpu.py"]
    return [
        ("gpu_tests", gpu_tests, 180),
        (
            "train_speed",
            [python, "-m", "benchmarks.train_speed", "--device", device, "--data-root", str(data), *speed]
            + ["--out", str(out / "train_speed.json"), "--override", *drawn_off],
            150,
        ),
        (
            "whole_process",
            [python, "-m", "benchmarks.whole_process", "--device", device, "--data-root", str(data), *whole]
            + ["--out", str(out / "whole_process.json"), "--override", *overrides[1:]],
            240,
        ),
        (
            "parallel_sweep",
            [python, "-m", "benchmarks.parallel_sweep", *grid, "--out", str(out / "parallel_sweep.json")]
            + ["--overrides", "trainer.max_epochs=1", *trainer, *overrides],
            150,
        ),
        ("nll_train", [python, "train.py", "trainer.max_epochs=1", *trainer, *overrides, f"hydra.run.dir={run}"], 60),
        (
            "nll_k5000",
            [python, "evaluate.py", f"ckpt_path={run}", "evaluation.metrics=all", f"device={device}"]
            + (["evaluation.nll.k=20", "evaluation.samples=200"] if dry else ["evaluation.nll.k=5000"]),
            120,
        ),
    ]


def carried_wheels(out: Path) -> dict[str, str]:
    """The environment with the wheels in .whl/ installed, where Python lacks Hydra; else this one."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    wheels = sorted((PROJECT / ".whl").glob("*.whl"))
    if importlib.util.find_spec("hydra") is not None or not wheels:
        return env
    site = out / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(site)]
    subprocess.run([*pip, *map(str, wheels)], check=True)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return env


def run_step(popen, command: list[str], env: dict, log, timeout: int) -> int | str:
    """The step's exit status, or "timeout" (the step killed)."""
    process = popen(command, env=env, stdout=log, stderr=log)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return "timeout"


def main(argv: list[str] | None = None, popen=None) -> int:
    """Runs the steps; the exit status: 1 if one failed. ``popen`` starts each step's process (by default
    ``subprocess.Popen`` in the project folder; the test suite forks them from a process that has imported the
    project, tests/prestarted.py)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="every step on this CPU, tiny; CUDA parts skipped")
    parser.add_argument("--data-root", type=Path, default=None, help="folder holding MNIST/raw/ ($VAE_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "benchmarks/results/gpu_check")))
    args = parser.parse_args(argv)
    popen = popen or functools.partial(subprocess.Popen, cwd=PROJECT)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = carried_wheels(out)
    with tempfile.TemporaryDirectory() as tiny:
        data = args.data_root or Path(os.environ.get("VAE_DATA_DIR", "data"))
        if args.dry_run and args.data_root is None:  # a few generated images in the MNIST format
            data = write_mnist(Path(tiny)).parents[1]  # <tiny>/MNIST/raw -> <tiny>
        report = {"dry_run": args.dry_run, "python": sys.version.split()[0], "steps": {}}
        with (out / "gpu_check.log").open("w") as log:
            for name, command, timeout in steps(out, data.resolve(), args.dry_run):
                print(f"== {name}: {' '.join(command)}", file=log, flush=True)
                start = time.perf_counter()
                code = run_step(popen, command, env, log, timeout)
                seconds = round(time.perf_counter() - start, 1)
                report["steps"][name] = {"returncode": code, "seconds": seconds}
                print(f"{name}: {'ok' if code == 0 else f'FAILED ({code})'} in {seconds} s", flush=True)
        for name in ("train_speed", "whole_process", "parallel_sweep"):
            path = out / f"{name}.json"
            if path.is_file():
                report["steps"][name]["results"] = json.loads(path.read_text())
        for eval_json in (out / "nll_run").rglob("*eval.json"):  # written beside the checkpoint evaluated
            report["steps"]["nll_k5000"]["results"] = json.loads(eval_json.read_text())
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    failed = [name for name, step in report["steps"].items() if step["returncode"] != 0]
    print(f"written to {out / 'gpu_check.json'}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
