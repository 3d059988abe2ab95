"""The whole-process figures checked by an independent timer: hyperfine (``apt-get install hyperfine``).

The same commands as the rows (P), (T) and (A) of ``benchmarks.whole_process``, of ``--short`` and ``--long``
epochs, each run ``--runs`` times by hyperfine, which times processes from outside. An epoch is
(median_long - median_short) / (long - short) and its ratio to the floor is taken between those medians.
hyperfine runs each command's runs back to back rather than interleaved, so a drift of the machine moves these
ratios more than whole_process's: a check of its figures, not a replacement.

    python -m benchmarks.cross_check --runs 5
"""

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.train_speed import provenance
from benchmarks.whole_process import PROJECT, ROWS, add_process_options, commands, process_setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_process_options(parser)
    parser.add_argument("--runs", type=int, default=5, help="runs of each command")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON file (default benchmarks/results/<device>-hyperfine)"
    )
    args = parser.parse_args()
    if shutil.which("hyperfine") is None:
        sys.exit("hyperfine is not installed: apt-get install hyperfine (or cargo install hyperfine)")
    device, root, source, common = process_setup(args)
    lengths = (args.short, args.long)
    with tempfile.TemporaryDirectory() as out:
        names, lines = [], []
        for row in ROWS:
            for n in lengths:
                names += ["--command-name", f"{row}{n}"]
                lines.append(shlex.join(commands(row, n, source, root, common, Path(out), args)))
        exported = Path(out) / "hyperfine.json"
        hyperfine = ["hyperfine", "--shell=none", "--runs", str(args.runs), "--export-json", str(exported), *names]
        subprocess.run([*hyperfine, *lines], cwd=PROJECT, check=True)
        medians = {result["command"]: result["median"] for result in json.loads(exported.read_text())["results"]}
    epochs = {
        row: (medians[f"{row}{args.long}"] - medians[f"{row}{args.short}"]) / (args.long - args.short) for row in ROWS
    }
    report = {
        **provenance(device),
        "timer": "hyperfine",
        "runs": args.runs,
        "epochs": list(lengths),
        "median_process_s": medians,
        "rows": {row: {"label": ROWS[row], "s_per_epoch": e, "vs_floor": e / epochs["P"]} for row, e in epochs.items()},
    }
    path = args.out or PROJECT / "benchmarks" / "results" / f"{device.type}-hyperfine.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    epoch = f"(median t{args.long} - median t{args.short}) / {args.long - args.short}"
    print(f"\nhyperfine, {args.runs} runs of each command; epoch = {epoch}")
    for row, r in report["rows"].items():
        print(f"({row}) {r['label']}: {r['s_per_epoch']:.2f} s per epoch, {r['vs_floor']:.2f}x the floor")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
