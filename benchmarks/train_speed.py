"""Training and evaluation speed of this framework against plain PyTorch loops, measured in one run.

Rows, for each backbone, all with the same model (the framework's default MLP 784-400-20 or conv
VAE, Bernoulli likelihood, Adam lr 1e-3, batch 128):
  (a) this framework, tensor data path       (python train.py data.loader=tensor)
  (b) this framework, torchvision data path  (python train.py data.loader=torchvision)
  (c) a plain loop over torchvision's MNIST with DataLoader(ToTensor()): what one writes by hand
  (d) a plain loop over the training set held in one float tensor: no data pipeline, the floor
and, with --compile, (a) and (d) with torch.compile. Then the throughput of the importance-
weighted NLL. Times cover training batches only (validation off in every row). Each row runs
--epochs epochs, --repeats times, the rows interleaved so that a slow spell of the machine hits
them alike; the first epoch of each run is warm-up, and the median of the other epochs is
reported. The framework trains on its 55,000-image split, the plain loops on all 60,000, so
rows are compared per image (images/s; s/epoch as measured).

    python -m benchmarks.train_speed                                # CPU, both backbones
    python -m benchmarks.train_speed --device cuda --compile        # a GPU
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import hydra
import lightning as L
import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from benchmarks.options import add_data_options, data_folders
from benchmarks.plain_loop import now, plain_step
from vae.callbacks import EpochTimer
from vae.metrics import iw_log_likelihood
from vae.models import VAE
from vae.training import build
from vae.utils import compose_config
from vae.utils.hardware import describe_hardware

LATENT_DIM, BATCH_SIZE, LR = 20, 128, 1e-3
VISUALS = ["reconstructions", "prior_samples", "latent_scatter", "latent_traversal", "interpolation", "kl_per_dim"]
ROWS = {
    "a": "framework, tensor path",
    "b": "framework, torchvision path",
    "c": "plain loop, DataLoader(ToTensor())",
    "d": "plain loop, one float tensor (floor)",
    "a+compile": "framework, tensor path, compiled",
    "d+compile": "plain loop, one float tensor, compiled",
}


# --- plain PyTorch: the loops a user writes by hand ------------------------------------------
def plain_model(backbone: str, device: torch.device, compile: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The framework's default encoder and decoder for ``backbone``, as plain modules."""
    with tempfile.TemporaryDirectory() as out:
        cfg = compose_config([f"backbone={backbone}"], out)
    encoder = hydra.utils.instantiate(cfg.backbone.encoder)(in_shape=(1, 28, 28), out_dim=2 * LATENT_DIM)
    decoder = hydra.utils.instantiate(cfg.backbone.decoder)(latent_dim=LATENT_DIM, out_shape=(1, 28, 28))
    encoder, decoder = encoder.to(device), decoder.to(device)
    if compile:
        encoder.compile()
        decoder.compile()
    return encoder, decoder


def plain_dataloader_epochs(backbone: str, source: Path, device: torch.device, epochs: int) -> list[dict]:
    encoder, decoder = plain_model(backbone, device, compile=False)
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=LR)
    dataset = datasets.MNIST(source, train=True, transform=transforms.ToTensor())
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True)
    results = []
    for _ in range(epochs):
        start, total = now(device), 0.0
        for x, _ in loader:
            total += plain_step(encoder, decoder, optimizer, x.to(device)).item()  # as pytorch/examples does
        results.append({"train_epoch_s": now(device) - start, "images": float(len(dataset))})
    return results


def plain_tensor_epochs(backbone: str, source: Path, device: torch.device, epochs: int, compile: bool) -> list[dict]:
    encoder, decoder = plain_model(backbone, device, compile)
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=LR)
    images = datasets.MNIST(source, train=True).data.to(device).unsqueeze(1).float().div_(255)  # (60000, 1, 28, 28)
    results = []
    for _ in range(epochs):
        start = now(device)
        for index in torch.randperm(len(images), device=device).split(BATCH_SIZE):
            plain_step(encoder, decoder, optimizer, images[index])
        results.append({"train_epoch_s": now(device) - start, "images": float(len(images))})
    return results


# --- this framework, as train.py builds it ---------------------------------------------------
def framework_epochs(
    backbone: str, loader: str, root: Path, device: torch.device, epochs: int, compile: bool, extra: list[str] = ()
) -> list[dict]:
    overrides = [
        f"backbone={backbone}",
        f"data.root={root}",
        f"data.loader={loader}",
        f"trainer.max_epochs={epochs}",
        f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}",
        "trainer.limit_val_batches=0",  # training batches only, as in the plain loops
        f"model.compile={str(compile).lower()}",
        "~callbacks.model_checkpoint",
        "~callbacks.last_checkpoint",
        *[f"~callbacks.{name}" for name in VISUALS],
        *extra,
    ]
    with tempfile.TemporaryDirectory() as out:
        L.seed_everything(0)
        datamodule, model, trainer = build(compose_config(overrides, out))
        trainer.fit(model, datamodule=datamodule)
    return next(cb for cb in trainer.callbacks if isinstance(cb, EpochTimer)).epochs


# --- evaluation ----------------------------------------------------------------------------
def iw_nll_throughput(
    source: Path, device: torch.device, k: int, n_images: int, batch: int, max_decodes: int, model: VAE | None = None
) -> dict:
    """The NLL's speed on the first test images, for ``model`` (default: the framework's default MLP VAE)."""
    torch.manual_seed(0)
    model = (model or VAE(latent_dim=LATENT_DIM)).to(device).eval()  # the cost does not depend on the weights
    x = datasets.MNIST(source, train=False).data[:n_images].unsqueeze(1).float().div(255).to(device)
    start = now(device)
    nll = torch.cat([-iw_log_likelihood(model, xb, k=k, max_decodes=max_decodes) for xb in x.split(batch)])
    seconds = now(device) - start
    return {
        "k": k,
        "images": n_images,
        "seconds": seconds,
        "images_per_s": n_images / seconds,
        "seconds_for_10000_images": 10_000 * seconds / n_images,
        "batch": batch,
        "max_decodes": max_decodes,
        "finite": bool(torch.isfinite(nll).all()),
    }


def measure(row: str, backbone: str, root: Path, source: Path, device: torch.device, args: argparse.Namespace) -> list:
    """One run of a row: the figures of each epoch."""
    compiled, epochs = row.endswith("+compile"), args.epochs
    if row.startswith("a") or row == "b":
        loader = "torchvision" if row == "b" else "tensor"
        return framework_epochs(backbone, loader, root, device, epochs, compiled, args.override)
    if row == "c":
        return plain_dataloader_epochs(backbone, source, device, epochs)
    return plain_tensor_epochs(backbone, source, device, epochs, compiled)


def summarize(runs: dict[str, list[list[dict]]]) -> dict:
    """Median speed of each row, and its time per image against (c) and (d) taken within each
    repeat (rows of one repeat ran back to back) and then the median over repeats: a machine
    that slows down for a while moves both sides of each ratio alike."""

    def seconds_per_image(epochs: list[dict]) -> float:
        return statistics.median(e["train_epoch_s"] / e["images"] for e in epochs)

    measured = {}
    for row, repeats in runs.items():
        epochs = [e for repeat in repeats for e in repeat]
        per_image = statistics.median(e["train_epoch_s"] / e["images"] for e in epochs)
        measured[row] = {
            "label": ROWS[row],
            "epochs": epochs,
            "images_per_epoch": epochs[0]["images"],
            "s_per_epoch": per_image * epochs[0]["images"],
            "images_per_s": 1 / per_image,
        }
        for base in ("c", "d"):
            if base in runs:
                pairs = [seconds_per_image(r) / seconds_per_image(b) for r, b in zip(repeats, runs[base], strict=True)]
                measured[row][f"time_vs_{base}"] = statistics.median(pairs)
                measured[row][f"time_vs_{base}_per_repeat"] = pairs
    return measured


def git_revision() -> str:
    """The commit measured, marked -dirty when the working tree has uncommitted changes."""
    command = ["git", "describe", "--always", "--dirty"]
    return subprocess.run(command, cwd=Path(__file__).parent, capture_output=True, text=True).stdout.strip()


def provenance(device: torch.device) -> dict:
    """What a results file says of where it comes from: command, date, hardware, versions, commit."""
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware(device),
        "versions": {"torch": torch.__version__, "lightning": L.__version__},
        "git": git_revision(),
    }


def hardware(device: torch.device) -> dict:
    info = {"machine": describe_hardware(device), "torch_threads": torch.get_num_threads(), "device": str(device)}
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["mlp", "conv"], choices=["mlp", "conv"])
    parser.add_argument("--rows", nargs="+", default=["a", "b", "c", "d"], choices=list(ROWS))
    parser.add_argument("--compile", action="store_true", help="add the compiled rows a+compile and d+compile")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run; the first is warm-up")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each row, interleaved")
    add_data_options(parser)
    parser.add_argument("--iw-k", type=int, default=5000)
    parser.add_argument("--iw-images", type=int, default=None, help="test images for the NLL (default: all on GPU)")
    parser.add_argument("--iw-batch", type=int, default=None)
    parser.add_argument("--iw-max-decodes", type=int, default=None)
    parser.add_argument("--override", nargs="*", default=[], help="more Hydra overrides for the framework rows")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default benchmarks/results/<device>.json)")
    args = parser.parse_args()

    device = torch.device(args.device)
    root, source = data_folders(args)
    rows = args.rows + (["a+compile", "d+compile"] if args.compile else [])
    report = {
        **provenance(device),
        "epochs": args.epochs,
        "repeats": args.repeats,
        "training": {},
    }
    for backbone in args.backbones:
        runs: dict[str, list[list[dict]]] = {row: [] for row in rows}  # row -> repeat -> timed epochs
        for repeat in range(args.repeats):
            for row in rows:
                print(f"[{backbone}] ({row}) {ROWS[row]}, run {repeat + 1}/{args.repeats} ...", flush=True)
                runs[row].append(measure(row, backbone, root, source, device, args)[1 if args.epochs > 1 else 0 :])
        report["training"][backbone] = summarize(runs)

    on_gpu = device.type == "cuda"
    report["iw_nll"] = iw_nll_throughput(
        source,
        device,
        k=args.iw_k,
        n_images=args.iw_images or (10_000 if on_gpu else 20),
        batch=args.iw_batch or (100 if on_gpu else 10),
        max_decodes=args.iw_max_decodes or (500_000 if on_gpu else 10_000),  # a GPU takes the old 100 x 5,000 at once
    )

    out = args.out or Path("benchmarks/results") / f"{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"written to {out}")


def print_table(report: dict) -> None:
    runs = f"median of {report['repeats']} runs x {max(1, report['epochs'] - 1)} timed epochs"
    print(f"\n{report['hardware']} | torch {report['versions']['torch']} | {runs}")
    print("| backbone | row | s/epoch | images/epoch | images/s | time vs (c) | time vs (d) |")
    print("|---|---|---|---|---|---|---|")
    for backbone, measured in report["training"].items():
        for row, r in measured.items():
            vs = [f"{r[f'time_vs_{b}']:.2f}x" if f"time_vs_{b}" in r else "-" for b in ("c", "d")]
            cells = [backbone, f"({row}) {r['label']}", f"{r['s_per_epoch']:.2f}", f"{r['images_per_epoch']:.0f}"]
            print("| " + " | ".join([*cells, f"{r['images_per_s']:.0f}", *vs]) + " |")
    iw = report["iw_nll"]
    print(
        f"\nIW-NLL, k={iw['k']}: {iw['images_per_s']:.2f} images/s over {iw['images']} test images "
        f"-> {iw['seconds_for_10000_images']:.0f} s for 10,000"
    )


if __name__ == "__main__":
    main()
