"""Speed as a user feels it: the framework's epoch against the plain loop's, every row a fresh process timed alike.

One model throughout, the defaults (MLP VAE 784-400-20, Bernoulli, Adam 1e-3, batch 128, 55,000 training images).
Every row is timed the same way, from outside, as whole processes of ``--short`` and of ``--long`` epochs: an
epoch costs (t_long - t_short) / (long - short), so that what a process does once (imports, reading the data,
the test, the last pictures) cancels, the same way for every row.
  (P) the floor: ``python -m benchmarks.plain_loop``, the plain loop as one writes it by hand, on as many images
  (T) ``python train.py`` training batches alone: no validation, checkpoint or picture, and no test
  (A) ``python train.py``, the defaults: validation of 5,000 images, every picture and both checkpoints after
      each epoch, then the test
  (D) the defaults under Lightning's simple profiler: the seconds of the pictures drawn after validation, an
      epoch's as (p_long - p_short) / (long - short), so that the first draw's one-off cost cancels
Each repeat runs every row once, in an order that rotates from one repeat to the next; the ratios to the floor
(T/P and A/P, per training image) are taken within each repeat and reported as their median, with their range
and every repeat's value. Figures by which a whole default epoch (A) would cost less than its training batches
alone (T) are refused, not reported: the machine drifted more than what is measured (:func:`consistency_problems`).
Then the start-up of ``train.py`` (its imports) and, with ``--sweep-runs``, the wall time of a sweep.

    python -m benchmarks.whole_process                     # CPU, 5 repeats
    python -m benchmarks.whole_process --device cuda       # a GPU
    python -m benchmarks.cross_check                       # the same rows, timed by hyperfine
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.options import add_data_options, data_folders
from benchmarks.plain_loop import TRAIN_IMAGES
from benchmarks.train_speed import VISUALS, provenance
from vae.callbacks.base import VisualCallback

PROJECT = Path(__file__).resolve().parents[1]
ROWS = {
    "P": "plain loop, the floor (a fresh process)",
    "T": "train.py, training batches alone",
    "A": "train.py, defaults",
}
TRAINING_ONLY = [  # what row (T) leaves out of a default run
    "trainer.limit_val_batches=0",
    "~callbacks.model_checkpoint",
    "~callbacks.last_checkpoint",
    *[f"~callbacks.{name}" for name in VISUALS],
    "test=false",
]


def add_process_options(parser: argparse.ArgumentParser) -> None:
    """The options of the processes timed, shared with ``benchmarks.cross_check``."""
    parser.add_argument("--short", type=int, default=1, help="epochs of the short process")
    parser.add_argument("--long", type=int, default=5, help="epochs of the long process")
    add_data_options(parser)
    parser.add_argument("--override", nargs="*", default=[], help="more Hydra overrides for every train.py")
    parser.add_argument("--train-images", type=int, default=TRAIN_IMAGES, help="images of train.py's training split")


def process_setup(args: argparse.Namespace) -> tuple[torch.device, Path, Path, list[str]]:
    """The device, the data root, the folder of the extracted files and the overrides of every ``train.py``."""
    device = torch.device(args.device)
    root, source = data_folders(args)
    accelerator = f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}"
    return device, root, source, [accelerator, f"data.verify={args.verify}", *args.override]


def commands(row: str, epochs: int, source: Path, root: Path, common: list[str], out: Path, args) -> list[str]:
    """The command line of row ``row`` for a process of ``epochs`` epochs, run folders under ``out``."""
    if row == "P":
        floor = [sys.executable, "-m", "benchmarks.plain_loop", "--data-root", str(source), "--device", args.device]
        return [*floor, "--images", str(args.train_images), "--epochs", str(epochs)]
    extra = TRAINING_ONLY if row == "T" else []
    train = [sys.executable, "train.py", *common, *extra, f"trainer.max_epochs={epochs}"]
    return [*train, f"data.root={root}", f"paths.root_dir={out}"]


def wall_seconds(command: list[str]) -> float:
    """Wall time of one process, its output discarded."""
    start = time.perf_counter()
    subprocess.run(command, cwd=PROJECT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def picture_command(overrides: list[str], root: Path, out: Path, epochs: int) -> list[str]:
    """``train.py`` of ``epochs`` epochs under Lightning's simple profiler, writing into ``out``."""
    command = [sys.executable, "train.py", *overrides, f"trainer.max_epochs={epochs}", "+trainer.profiler=simple"]
    return command + [f"data.root={root}", f"paths.root_dir={out}"]


def profiled_picture_seconds(printed: str) -> dict[str, float]:
    """Seconds of the pictures drawn after validation, by visual callback (their ``on_validation_end``), from
    the simple profiler's table in what a ``train.py`` process printed."""
    # the fit's table (the first; the test's follows), after its header: | action | mean | calls | total | % |
    table = printed.split("|  Action")[1].splitlines()[1:]
    totals = {}  # action -> total seconds
    for line in table:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[3] != "-":
            totals[cells[0]] = float(cells[3])
    visuals = sorted(cls.__name__ for cls in VisualCallback.__subclasses__())
    return {name: totals.get(f"[Callback]{name}.on_validation_end", 0.0) for name in visuals}


def picture_seconds(overrides: list[str], root: Path, epochs: int) -> dict[str, float]:
    """Row (D) for one process of ``epochs`` epochs: :func:`profiled_picture_seconds` of its output."""
    with tempfile.TemporaryDirectory() as out:
        command = picture_command(overrides, root, Path(out), epochs)
        done = subprocess.run(command, cwd=PROJECT, check=True, capture_output=True, text=True)
    return profiled_picture_seconds(done.stdout + done.stderr)  # the profiler's table is logged


def startup_seconds() -> float:
    """Wall time of a process that runs ``train.py`` up to its main: its imports, as the script makes them."""
    code = "import runpy; runpy.run_path('train.py', run_name='imported')"
    return wall_seconds([sys.executable, "-c", code])


def summarize(times: dict[str, list[tuple[float, float]]], short: int, long: int) -> dict:
    """Each row's epoch and its ratio to the floor (P), from the (t_short, t_long) of each repeat.

    Every row trains on as many images, so the ratio of epochs is the ratio per training image."""
    epochs = {row: [(t_long - t_short) / (long - short) for t_short, t_long in runs] for row, runs in times.items()}
    rows = {}
    for row, runs in times.items():
        ratio = [e / p for e, p in zip(epochs[row], epochs["P"], strict=True)]
        rows[row] = {
            "label": ROWS[row],
            "process_s": {f"{short}_epochs": [s for s, _ in runs], f"{long}_epochs": [lo for _, lo in runs]},
            "s_per_epoch": statistics.median(epochs[row]),
            "s_per_epoch_per_repeat": epochs[row],
            "fixed_s": statistics.median(s - e * short for (s, _), e in zip(runs, epochs[row], strict=True)),
            "vs_floor": statistics.median(ratio),
            "vs_floor_range": [min(ratio), max(ratio)],
            "vs_floor_per_repeat": ratio,
        }
    return rows


def consistency_problems(rows: dict[str, dict]) -> list[str]:
    """Why the figures of :func:`summarize` must not be reported; none when they may.

    A long process that was not slower than the short one gives no epoch at all, and a whole default epoch (A)
    that costs less than its training batches alone (T), by the medians of the ratios, is impossible: (A) runs
    every batch (T) runs and more. Either means the machine drifted by more than what is measured."""
    problems = []
    for row, r in rows.items():
        empty = [i + 1 for i, e in enumerate(r["s_per_epoch_per_repeat"]) if e <= 0]
        if empty:
            problems.append(f"({row}): the long process was not slower than the short one in repeat(s) {empty}")
    if "A" in rows and "T" in rows and rows["A"]["vs_floor"] < rows["T"]["vs_floor"]:
        a, t = rows["A"], rows["T"]
        per_repeat = zip(a["vs_floor_per_repeat"], t["vs_floor_per_repeat"], strict=True)
        pairs = ", ".join(f"{x:.2f}/{y:.2f}" for x, y in per_repeat)
        problems.append(
            f"a whole default epoch (A, {a['vs_floor']:.2f}x the floor) would cost less than its training batches "
            f"alone (T, {t['vs_floor']:.2f}x); A/T per repeat: {pairs}. Run more repeats, or on a quieter machine"
        )
    return problems


def pictures_summary(pictures: list[tuple[dict, dict]], short: int, long: int, epoch_s: float) -> dict:
    """Row (D): the pictures' seconds an epoch, their share of (A)'s epoch, the first draw's extra cost."""
    totals = [(sum(p_short.values()), sum(p_long.values())) for p_short, p_long in pictures]
    per_epoch = [(p_long - p_short) / (long - short) for p_short, p_long in totals]
    first_extra = [p_short / short - e for (p_short, _), e in zip(totals, per_epoch, strict=True)]
    return {
        "s_per_epoch": statistics.median(per_epoch),
        "first_draw_extra_s": statistics.median(first_extra),
        "share_of_epoch": statistics.median(per_epoch) / epoch_s,
        "process_s": {f"{short}_epochs": [t[0] for t in totals], f"{long}_epochs": [t[1] for t in totals]},
        "s_per_epoch_by_callback": {
            name: statistics.median((p_long[name] - p_short[name]) / (long - short) for p_short, p_long in pictures)
            for name in pictures[0][0]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_process_options(parser)
    parser.add_argument("--repeats", type=int, default=5, help="runs of each row, interleaved")
    parser.add_argument("--no-pictures", action="store_true", help="leave out row (D), the profiled pictures")
    parser.add_argument("--sweep-runs", type=int, default=0, help="runs of a timed sweep (1 epoch each); 0: none")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default benchmarks/results/<device>-whole)")
    parser.add_argument(
        "--report-inconsistent",
        action="store_true",
        help="write figures that fail the consistency check too, with its problems listed (for tiny dry runs)",
    )
    args = parser.parse_args()

    device, root, source, common = process_setup(args)
    times: dict[str, list[tuple[float, float]]] = {row: [] for row in ROWS}  # row -> (t_short, t_long) per repeat
    pictures: list[tuple[dict, dict]] = []  # pictures' seconds by callback in the short and the long process
    with tempfile.TemporaryDirectory() as out:
        for repeat in range(args.repeats):
            order = [*ROWS][repeat % len(ROWS) :] + [*ROWS][: repeat % len(ROWS)]
            for row in order:
                print(f"({row}) {ROWS[row]}, {args.short} and {args.long} epochs, run {repeat + 1}", flush=True)
                runs = [commands(row, n, source, root, common, Path(out), args) for n in (args.short, args.long)]
                times[row].append(tuple(wall_seconds(command) for command in runs))
            if not args.no_pictures:
                print(f"(D) train.py under the profiler, run {repeat + 1}/{args.repeats}", flush=True)
                pictures.append(tuple(picture_seconds(common, root, n) for n in (args.short, args.long)))

    rows = summarize(times, args.short, args.long)
    report = {**provenance(device), "repeats": args.repeats, "epochs": [args.short, args.long], "rows": rows}
    problems = consistency_problems(rows)
    if problems and not args.report_inconsistent:
        print(json.dumps(report, indent=2), file=sys.stderr)
        sys.exit("Not reported:\n- " + "\n- ".join(problems))
    report["problems"] = problems
    report["startup_s"] = startup_seconds()
    if pictures:
        report["pictures"] = pictures_summary(pictures, args.short, args.long, rows["A"]["s_per_epoch"])
    if args.sweep_runs:
        dims = ",".join(str(2 + i) for i in range(args.sweep_runs))
        print(f"sweep of {args.sweep_runs} runs", flush=True)
        with tempfile.TemporaryDirectory() as out:
            sweep = ["-m", f"model.latent_dim={dims}", "trainer.max_epochs=1", *common, f"data.root={root}"]
            seconds = wall_seconds([sys.executable, "train.py", *sweep, f"paths.root_dir={out}"])
        report["sweep"] = {"runs": args.sweep_runs, "seconds": seconds}

    path = args.out or PROJECT / "benchmarks" / "results" / f"{device.type}-whole.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"written to {path}")


def print_table(report: dict) -> None:
    short, long = report["epochs"]
    if report["problems"]:
        print("\nINCONSISTENT, not figures to quote:\n- " + "\n- ".join(report["problems"]))
    print(f"\nepoch = (t{long} - t{short}) / {long - short} of whole processes; median of {report['repeats']} repeats")
    print("| row | s per epoch | fixed cost of a process, s | time per training image vs (P): median (range) |")
    print("|---|---|---|---|")
    for row, r in report["rows"].items():
        low, high = r["vs_floor_range"]
        cells = [f"({row}) {r['label']}", f"{r['s_per_epoch']:.2f}", f"{r['fixed_s']:.1f}"]
        print("| " + " | ".join([*cells, f"{r['vs_floor']:.2f}x ({low:.2f}-{high:.2f})"]) + " |")
    print(f"start-up of train.py (imports): {report['startup_s']:.1f} s")
    if "pictures" in report:
        p = report["pictures"]
        print(
            f"pictures after validation: {p['s_per_epoch']:.3f} s per epoch, {p['share_of_epoch']:.1%} of (A)'s"
            f" epoch; the first draw {p['first_draw_extra_s']:.2f} s more"
        )
        by_callback = p["s_per_epoch_by_callback"]
        print("  by callback, ms per epoch: " + ", ".join(f"{name} {s * 1000:.1f}" for name, s in by_callback.items()))
    if "sweep" in report:
        print(f"sweep of {report['sweep']['runs']} runs: {report['sweep']['seconds']:.1f} s")


if __name__ == "__main__":
    main()
