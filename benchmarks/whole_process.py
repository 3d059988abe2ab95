"""Speed as a user feels it: whole ``python train.py`` processes against the plain tensor loop, in one run.

Rows, the defaults throughout (MLP VAE 784-400-20, Bernoulli, Adam 1e-3, batch 128; validation of 5,000
images, every picture and both checkpoints after every epoch, then the test):
  (A) ``python train.py``, whole processes of 1 and of 3 epochs: an epoch costs (t3 - t1) / 2, over the
      55,000 training images; the start-up and end (imports, data, test, final pictures) is t1 - epoch
  (B) the same with ``callbacks.every_n_epochs=0``: pictures at the end only
  (D) the defaults under Lightning's simple profiler, 1 and 3 epochs: the seconds of the pictures drawn
      after validation, an epoch's as (p3 - p1) / 2 (the first draw's one-off cost cancels), as a share of
      (A)'s epoch, and by callback. Measured inside the processes: (A) and (B) differ by less than the drift
      between them
  (P) the plain tensor loop of ``train_speed.py`` row (d) over all 60,000 images, in this process (warm)
Rows are interleaved and repeated; each ratio is taken within a repeat and the median is reported, per
image. Then the start-up of ``train.py`` (its imports) and, with ``--sweep-runs``, the wall time of a sweep.

    python -m benchmarks.whole_process                         # CPU, 3 repeats, a 6-run sweep
    python -m benchmarks.whole_process --device cuda         # a GPU
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.train_speed import plain_tensor_epochs, provenance
from vae.callbacks.base import VisualCallback
from vae.data.files import ensure_files

PROJECT = Path(__file__).resolve().parents[1]
TRAIN_IMAGES = 55_000  # the framework's training split (the plain loop trains on the whole file's 60,000)


def train_seconds(overrides: list[str], root: Path) -> float:
    """Wall time of one ``python train.py`` process, output discarded (its run folder in a temporary one)."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "train.py", *overrides, f"data.root={root}", f"paths.root_dir={out}"]
        start = time.perf_counter()
        subprocess.run(command, cwd=PROJECT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def picture_seconds(overrides: list[str], root: Path, epochs: int) -> dict[str, float]:
    """Seconds of the pictures drawn after validation in a ``train.py`` process of ``epochs`` epochs, by visual
    callback, from Lightning's simple profiler (their ``on_validation_end``)."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "train.py", *overrides, f"trainer.max_epochs={epochs}", "+trainer.profiler=simple"]
        command += [f"data.root={root}", f"paths.root_dir={out}"]
        done = subprocess.run(command, cwd=PROJECT, check=True, capture_output=True, text=True)
    printed = done.stdout + done.stderr  # the profiler's table is logged
    # the fit's table (the first; the test's follows), after its header: | action | mean | calls | total | % |
    table = printed.split("|  Action")[1].splitlines()[1:]
    totals = {}  # action -> total seconds
    for line in table:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[3] != "-":
            totals[cells[0]] = float(cells[3])
    visuals = sorted(cls.__name__ for cls in VisualCallback.__subclasses__())
    return {name: totals.get(f"[Callback]{name}.on_validation_end", 0.0) for name in visuals}


def startup_seconds() -> float:
    """Wall time of a process that runs ``train.py`` up to its main: its imports, as the script makes them."""
    start = time.perf_counter()
    code = "import runpy; runpy.run_path('train.py', run_name='imported')"
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each row, interleaved")
    parser.add_argument("--short", type=int, default=1, help="epochs of the short process")
    parser.add_argument("--long", type=int, default=3, help="epochs of the long process")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-root", type=Path, default=None, help="folder holding MNIST/raw/ ($VAE_DATA_DIR)")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    parser.add_argument("--verify", default="md5", choices=["md5", "header"], help="check of the MNIST files")
    parser.add_argument("--sweep-runs", type=int, default=6, help="runs of the timed sweep (1 epoch each); 0: none")
    parser.add_argument("--override", nargs="*", default=[], help="more Hydra overrides for every train.py")
    parser.add_argument("--train-images", type=int, default=TRAIN_IMAGES, help="images of train.py's training split")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default benchmarks/results/<device>-whole)")
    args = parser.parse_args()

    device = torch.device(args.device)
    root = (args.data_root or Path(os.environ.get("VAE_DATA_DIR", "data"))).resolve()
    source = ensure_files(root, args.cache_dir.resolve(), md5=args.verify == "md5")
    accelerator = f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}"
    common = [accelerator, f"data.verify={args.verify}", *args.override]
    rows = {"A": [], "B": []}  # "A"/"B": [(t_short, t_long)] per repeat
    plain: list[float] = []  # seconds per image of the plain loop, per repeat
    pictures: list[tuple[dict, dict]] = []  # pictures' seconds by callback in the short and the long process
    for repeat in range(args.repeats):
        for row, extra in (("A", []), ("B", ["callbacks.every_n_epochs=0"])):
            print(f"({row}) train.py, {args.short} and {args.long} epochs, run {repeat + 1}/{args.repeats}", flush=True)
            times = [train_seconds([*common, *extra, f"trainer.max_epochs={n}"], root) for n in (args.short, args.long)]
            rows[row].append(tuple(times))
        print(f"(D) train.py under the profiler, {args.short} and {args.long} epochs, run {repeat + 1}", flush=True)
        pictures.append(tuple(picture_seconds(common, root, n) for n in (args.short, args.long)))
        print(f"(P) plain tensor loop, run {repeat + 1}/{args.repeats}", flush=True)
        epochs = plain_tensor_epochs("mlp", source, device, epochs=2, compile=False)[1:]  # the first warms up
        plain.append(statistics.median(e["train_epoch_s"] / e["images"] for e in epochs))

    report = {
        **provenance(device),
        "repeats": args.repeats,
        "plain_s_per_60000_images": statistics.median(plain) * 60_000,
        "startup_s": startup_seconds(),
        "rows": {},
    }
    for row, runs in rows.items():
        epoch = [(long - short) / (args.long - args.short) for short, long in runs]
        ratio = [e / args.train_images / p for e, p in zip(epoch, plain, strict=True)]
        report["rows"][row] = {
            "process_s": {f"{args.short}_epochs": [s for s, _ in runs], f"{args.long}_epochs": [lo for _, lo in runs]},
            "s_per_epoch": statistics.median(epoch),
            "fixed_s": statistics.median(short - e * args.short for (short, _), e in zip(runs, epoch, strict=True)),
            "time_per_image_vs_plain": statistics.median(ratio),
            "time_per_image_vs_plain_per_repeat": ratio,
        }
    totals = [(sum(short.values()), sum(long.values())) for short, long in pictures]
    per_epoch = [(long - short) / (args.long - args.short) for short, long in totals]
    first_extra = [short / args.short - e for (short, _), e in zip(totals, per_epoch, strict=True)]
    report["pictures"] = {
        "s_per_epoch": statistics.median(per_epoch),
        "first_draw_extra_s": statistics.median(first_extra),
        "share_of_epoch": statistics.median(per_epoch) / report["rows"]["A"]["s_per_epoch"],
        "process_s": {f"{n}_epochs": [p[i] for p in totals] for i, n in enumerate((args.short, args.long))},
        "s_per_epoch_by_callback": {
            name: statistics.median((long[name] - short[name]) / (args.long - args.short) for short, long in pictures)
            for name in pictures[0][0]
        },
    }
    if args.sweep_runs:
        dims = ",".join(str(2 + i) for i in range(args.sweep_runs))
        print(f"sweep of {args.sweep_runs} runs", flush=True)
        report["sweep"] = {
            "runs": args.sweep_runs,
            "seconds": train_seconds(["-m", f"model.latent_dim={dims}", "trainer.max_epochs=1", *common], root),
        }

    out = args.out or PROJECT / "benchmarks" / "results" / f"{device.type}-whole.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"written to {out}")


def print_table(report: dict) -> None:
    plain, startup = report["plain_s_per_60000_images"], report["startup_s"]
    print(f"\nplain tensor loop: {plain:.2f} s per 60,000 images; start-up of train.py (imports): {startup:.1f} s")
    print("| row | s per epoch | start-up and end, s | time per image vs the plain loop |")
    print("|---|---|---|---|")
    for row, label in (("A", "train.py, defaults"), ("B", "train.py, pictures at the end only")):
        r = report["rows"][row]
        ratio = r["time_per_image_vs_plain"]
        print(f"| ({row}) {label} | {r['s_per_epoch']:.2f} | {r['fixed_s']:.1f} | {ratio:.2f}x |")
    pictures = report["pictures"]
    print(
        f"pictures after validation: {pictures['s_per_epoch']:.3f} s per epoch, {pictures['share_of_epoch']:.1%} of"
        f" (A)'s epoch; the first draw {pictures['first_draw_extra_s']:.2f} s more"
    )
    by_callback = pictures.get("s_per_epoch_by_callback", {})
    print("  by callback, ms per epoch: " + ", ".join(f"{name} {s * 1000:.1f}" for name, s in by_callback.items()))
    if "sweep" in report:
        print(f"sweep of {report['sweep']['runs']} runs: {report['sweep']['seconds']:.1f} s")


if __name__ == "__main__":
    main()
