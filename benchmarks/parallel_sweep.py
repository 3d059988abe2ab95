"""A sweep run one job after another against the same sweep with several jobs at once.

Launches `python train.py -m <grid>` twice, with Hydra's basic launcher (sequential) and with
`hydra/launcher=parallel` (joblib, --n-jobs processes), times both end to end and checks that
every run wrote its metrics.json.

    python -m benchmarks.parallel_sweep                            # 12 one-epoch MLP runs, 2 jobs
    python -m benchmarks.parallel_sweep --n-jobs 6 --overrides trainer=gpu trainer.max_epochs=3
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from vae.runs.record import COMPLETED, RECORD, read_record, status_of

PROJECT = Path(__file__).resolve().parents[1]
GRID = ["model.latent_dim=2,5,10,20", "model.beta=1,2,4"]  # 12 runs


def sweep(grid: list[str], overrides: list[str], folder: Path, launcher: list[str]) -> dict:
    command = [sys.executable, "train.py", "-m", *grid, *overrides, *launcher, f"hydra.sweep.dir={folder}"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    completed = [status_of(read_record(p.parent)) == COMPLETED for p in folder.glob(f"*/{RECORD}")]
    return {"command": " ".join(command[1:]), "seconds": seconds, "runs_completed": sum(completed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", nargs="+", default=GRID, help="the swept overrides")
    parser.add_argument("--overrides", nargs="*", default=["trainer.max_epochs=1"], help="fixed overrides")
    parser.add_argument("--n-jobs", type=int, default=2, help="jobs at once in the parallel sweep")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default benchmarks/results/...)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        sequential = sweep(args.grid, args.overrides, Path(folder) / "sequential", [])
        parallel_launcher = ["hydra/launcher=parallel", f"hydra.launcher.n_jobs={args.n_jobs}"]
        parallel = sweep(args.grid, args.overrides, Path(folder) / "parallel", parallel_launcher)
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_cores": os.cpu_count(),
        "n_jobs": args.n_jobs,
        "sequential": sequential,
        "parallel": parallel,
        "speedup": sequential["seconds"] / parallel["seconds"],
    }
    out = args.out or PROJECT / "benchmarks" / "results" / f"parallel-sweep-{args.n_jobs}-jobs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(
        f"{sequential['runs_completed']} runs: sequential {sequential['seconds']:.0f} s, "
        f"{args.n_jobs} jobs at once {parallel['seconds']:.0f} s -> {report['speedup']:.2f}x; written to {out}"
    )


if __name__ == "__main__":
    main()
