"""What ``model.channels_last=true`` does to a conv VAE's speed on this machine, in one run.

For two conv nets, the backbone's default (32-64-64-64, 20 latent dims) and ``experiment=recipe_conv_vae``'s
(16-32-32-32, 32 latent dims), and each memory layout:
  - training: epochs of ``build(cfg)``, as ``train_speed.py``'s row (a) (validation, checkpoints and
    pictures off, ``--batches`` batches of 128 an epoch; the first epoch of each run is warm-up);
  - decoding: the importance-weighted NLL (``--k`` samples) of the first ``--images`` test digits, which
    is nearly all decoding.
The four cases run interleaved, ``--repeats`` times; each speed-up is the median of the ratios within
a repeat, so a slow spell of the machine moves both sides alike.

    python -m benchmarks.channels_last --out benchmarks/results/cpu-channels-last.json
"""

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import hydra
import torch

from benchmarks.train_speed import framework_epochs, iw_nll_throughput, provenance
from vae.data.datasets import dataset_spec
from vae.data.files import ensure_files
from vae.utils import compose_config

NETS = {  # name -> Hydra overrides of the conv backbone
    "default conv (32-64-64-64, 20 latent dims)": [],
    "recipe_conv_vae's (16-32-32-32, 32 latent dims)": ["backbone.channels=[16,32,32,32]", "model.latent_dim=32"],
}


def conv_model(overrides: list[str]):
    """The run's VAE as ``train.py`` builds it, in the layout its setup gives it."""
    with tempfile.TemporaryDirectory() as out:
        cfg = compose_config(["backbone=conv", *overrides], out)
    model = hydra.utils.instantiate(cfg.model, img_shape=(1, 28, 28), _convert_="all")
    model.apply_memory_format()
    return model


def paired_speedups(plain: dict, fast: dict, rates: dict[str, str], sides: tuple[str, str]) -> dict:
    """Per part (``plain[part]``, ``fast[part]``: seconds per item, one a repeat): ``<part>_speedup``, the median
    of the ratios within a repeat, and under ``rates[part]`` the median rate of each side, named by ``sides``."""
    results = {}
    for part, rate in rates.items():
        results[f"{part}_speedup"] = statistics.median(p / f for p, f in zip(plain[part], fast[part], strict=True))
        slow_side, fast_side = sides
        results[rate] = {slow_side: 1 / statistics.median(plain[part]), fast_side: 1 / statistics.median(fast[part])}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per training run; the first is warm-up")
    parser.add_argument("--batches", type=int, default=100, help="training batches an epoch")
    parser.add_argument("--k", type=int, default=500, help="importance samples of the NLL timed")
    parser.add_argument("--images", type=int, default=20, help="test digits of the NLL timed")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, required=True, help="JSON file of the results")
    args = parser.parse_args()

    device = torch.device(args.device)
    root = Path(os.environ.get("VAE_DATA_DIR", "data")).resolve()
    source = ensure_files(root, Path(".cache").resolve(), dataset_spec(), md5=False)
    seconds = {(net, cl): {"train": [], "decode": []} for net in NETS for cl in (False, True)}
    for repeat in range(args.repeats):
        for (net, cl), runs in seconds.items():
            print(f"{net}, channels_last={cl}, run {repeat + 1}/{args.repeats} ...", flush=True)
            overrides = [*NETS[net], f"model.channels_last={str(cl).lower()}"]
            extra = [*overrides, f"trainer.limit_train_batches={args.batches}"]
            epochs = framework_epochs("conv", "tensor", root, device, args.epochs, False, extra)[1:]
            runs["train"].append(statistics.median(e["train_epoch_s"] / e["images"] for e in epochs))
            nll = iw_nll_throughput(source, device, args.k, args.images, args.images, 10_000, conv_model(overrides))
            runs["decode"].append(nll["seconds"] / (args.images * args.k))

    results = {}
    rates, sides = {"train": "train_images_per_s", "decode": "decodes_per_s"}, ("contiguous", "channels_last")
    for net in NETS:
        results[net] = paired_speedups(seconds[(net, False)], seconds[(net, True)], rates, sides)
        print(f"{net}: training {results[net]['train_speedup']:.2f}x, decoding {results[net]['decode_speedup']:.2f}x")
    report = provenance(device) | {"repeats": args.repeats, "batches": args.batches, "k": args.k, "nets": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
