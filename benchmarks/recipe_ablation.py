"""What each change of ``experiment=recipe_mlp_vae`` buys, in nats, at equal training time.

Each arm is one ``python train.py experiment=recipe_mlp_vae`` process with one change of the recipe taken
back, all under the same ``trainer.max_time``. The cosine decay spans the epochs the recipe reaches in about
1.25 times that time, so that the time limit stops every arm near the same point of its schedule, as the
45-minute recipe stops at about 80% of its 1,200 epochs. Each run then tests its best checkpoint
(validation loss) with the importance-weighted NLL on the full test set (``--k`` samples, below the
recipe's 5,000 to keep the evaluation short: the arms are compared with one another).

    python -m benchmarks.recipe_ablation --out /tmp/ablation             # 9 minutes an arm, ~1 hour
    python -m benchmarks.recipe_ablation --out /tmp/ablation --arms recipe no_warmup --minutes 2
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.train_speed import provenance
from vae.runs.record import read_record

PROJECT = Path(__file__).resolve().parents[1]
EPOCHS_PER_MINUTE = 27  # the recipe's 2.8 s epochs (21 a minute) on the 2-core CPU, over 0.8
ARMS = {  # name -> the change taken back, as Hydra overrides
    "recipe": [],
    "no_output_bias": ["model.init_output_bias=false"],
    "no_warmup": ["model.kl_warmup_epochs=0"],
    "constant_lr": ["~scheduler"],
    "shape_784_500_20": ["backbone.hidden_dims=[500]", "model.latent_dim=20"],
}


def run_arm(name: str, changes: list[str], args: argparse.Namespace) -> dict:
    """Trains and evaluates one arm in ``<out>/<name>``; its test NLL, -ELBO, epochs and seconds."""
    folder = args.out / name
    command = [sys.executable, "train.py", "experiment=recipe_mlp_vae", *changes]
    epochs = args.minutes * EPOCHS_PER_MINUTE  # the cosine decay's length
    command += [f"trainer.max_time=00:00:{args.minutes:02d}:00", f"trainer.max_epochs={epochs}"]
    command += [f"evaluation.nll.k={args.k}", f"paths.root_dir={folder}", f"hydra.run.dir={folder}/run", *args.override]
    start = time.perf_counter()
    with open(args.out / f"{name}.log", "w") as log:
        subprocess.run(command, cwd=PROJECT, check=True, stdout=log, stderr=subprocess.STDOUT)
    summary = read_record(folder / "run")
    last = torch.load(folder / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return {
        "changes": changes,
        "test_nll": summary["metrics"]["test/nll"],
        "test_neg_elbo": -summary["metrics"]["test/elbo"],
        "epochs": last["epoch"] + 1,
        "best_epoch": summary["best_epoch"],
        "process_s": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the arms' runs and logs")
    parser.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--minutes", type=int, default=9, help="training time of every arm")
    parser.add_argument("--k", type=int, default=1000, help="importance samples of the test NLL")
    parser.add_argument("--override", nargs="*", default=[], help="more Hydra overrides for every arm")
    parser.add_argument("--results", type=Path, default=PROJECT / "benchmarks" / "results" / "cpu-recipe-ablation.json")
    args = parser.parse_args()
    if "VAE_DATA_DIR" not in os.environ:
        parser.error("set VAE_DATA_DIR to the folder holding MNIST/raw/")
    args.out.mkdir(parents=True, exist_ok=True)
    arms = {}
    for name in args.arms:
        arms[name] = run_arm(name, ARMS[name], args)
        print(f"{name:>18}: test NLL {arms[name]['test_nll']:.2f} nats (k={args.k}), {arms[name]['epochs']} epochs")
    result = provenance(torch.device("cpu")) | {"minutes": args.minutes, "k": args.k, "arms": arms}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
