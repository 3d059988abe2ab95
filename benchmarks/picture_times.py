"""Milliseconds of every draw of every visual callback inside one default training run (inline drawing).

Each draw is timed from the model's part (codes, decoded images) to the PNG and the event written, so that the
draws whose figure was drawn anew (its limits changed) can be told from those drawn over kept pixels.

    python -m benchmarks.picture_times --epochs 8 [--data-root DIR] [overrides ...]
"""

import argparse
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from vae.callbacks.base import VisualCallback
from vae.training import train
from vae.utils import compose_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--data-root", type=Path, default=None, help="folder holding MNIST/raw/ ($VAE_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one)")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides")
    args = parser.parse_args()
    root = (args.data_root or Path(os.environ.get("VAE_DATA_DIR", "data"))).resolve()

    times: dict[str, list[float]] = defaultdict(list)
    run = VisualCallback._run

    def timed(self: VisualCallback, *draw_args, **kwargs) -> None:
        start = time.perf_counter()
        run(self, *draw_args, **kwargs)
        self.writer.flush()  # background drawing too: the whole draw
        times[type(self).__name__].append(time.perf_counter() - start)

    VisualCallback._run = timed
    with tempfile.TemporaryDirectory() as temporary:
        out = args.out or Path(temporary)
        settings = [f"trainer.max_epochs={args.epochs}", f"data.root={root}", f"paths.root_dir={out}"]
        train(compose_config([*settings, *args.overrides], out))
    print("ms of each draw (the first includes one-off costs: fonts, building figures, loading fixed images)")
    for name, seconds in times.items():
        print(f"{name:16s} " + " ".join(f"{s * 1000:.1f}" for s in seconds))


if __name__ == "__main__":
    main()
