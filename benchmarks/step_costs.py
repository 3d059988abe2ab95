"""What the framework adds to a default run's steps and epochs, part by part, each measured alone in one process.

  (nvml)        one ``torch.cuda.is_available()``, which Adam calls at every step, with the variable Lightning
                sets on import and without it (``vae.utils.hardware.cuda_checks_without_nvml``)
  (data)        serving a training batch of 128 images from the 55,000 held as one uint8 tensor: gathered with
                ``index_select`` (``vae.data.tensors.ImageTensors``) and by indexing with the tensor of indices
  (hooks)       Lightning's dispatch of the per-batch callback hooks: a dispatch's cost, from a hook that no
                default callback defines, times the dispatches of a training step (counted in a real fit, all of
                them and with the empty ones taken out: ``vae.callbacks.hooks``)
Each pair of variants runs interleaved, ``--repeats`` times; the figures are medians, and a per-step saving is
multiplied by the 430 training steps of an epoch.

    python -m benchmarks.step_costs
"""

import argparse
import collections
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.trainer.call import _call_callback_hooks

from benchmarks.plain_loop import TRAIN_IMAGES
from benchmarks.train_speed import provenance
from vae.callbacks.hooks import BATCH_HOOKS
from vae.data.tensors import ImageTensors
from vae.training import build
from vae.utils import compose_config

NVML = "PYTORCH_NVML_BASED_CUDA_CHECK"
STEP_HOOKS = BATCH_HOOKS[:6]  # those of a training step
STEPS_PER_EPOCH = 430  # 55,000 images in batches of 128


def median_pair(first, second, repeats: int) -> tuple[float, float]:
    """Medians of ``first()`` and ``second()`` (seconds), run in turn ``repeats`` times."""
    times = [(first(), second()) for _ in range(repeats)]
    return statistics.median(a for a, _ in times), statistics.median(b for _, b in times)


def is_available_seconds(nvml: bool, calls: int = 2000) -> float:
    """Seconds of one ``torch.cuda.is_available()`` with or without the NVML-based check."""
    saved = os.environ.get(NVML)
    os.environ[NVML] = "1" if nvml else "0"
    try:
        start = time.perf_counter()
        for _ in range(calls):
            torch.cuda.is_available()
        return (time.perf_counter() - start) / calls
    finally:
        os.environ.pop(NVML) if saved is None else os.environ.__setitem__(NVML, saved)


class CountingProfiler(PassThroughProfiler):
    """Counts the profiled actions: Lightning profiles each callback hook it dispatches."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = collections.Counter()

    def start(self, action_name: str) -> None:
        self.counts[action_name] += 1


def dispatches_per_step(overrides: list[str], skip: bool, steps: int = 20) -> float:
    """Callback hook dispatches of a training step in a fit of ``steps`` steps, with or without the skip."""
    with tempfile.TemporaryDirectory() as out:
        limits = [f"trainer.limit_train_batches={steps}", "trainer.limit_val_batches=0", "trainer.max_epochs=1"]
        cfg = compose_config([*overrides, *limits], out)
        datamodule, model, trainer = build(cfg)
        if not skip:
            restore_batch_hooks(trainer)
        profiler = trainer.profiler = CountingProfiler()
        trainer.fit(model, datamodule=datamodule)
    per_step = [n for action, n in profiler.counts.items() if action.startswith("[Callback]") and is_step_hook(action)]
    return sum(per_step) / steps


def is_step_hook(action: str) -> bool:
    return action.rsplit(".", 1)[-1] in STEP_HOOKS


def restore_batch_hooks(trainer) -> None:
    """Gives every callback back the empty hooks ``vae.callbacks.hooks`` took out."""
    for callback in trainer.callbacks:
        for name in BATCH_HOOKS:
            callback.__dict__.pop(name, None)


def dispatch_seconds(trainer, calls: int = 2000) -> float:
    """Seconds of dispatching one hook that no default callback defines to all of the trainer's callbacks."""
    start = time.perf_counter()
    for _ in range(calls):
        _call_callback_hooks(trainer, "on_before_zero_grad", None)
    return (time.perf_counter() - start) / calls / len(trainer.callbacks)


def batch_seconds(select: bool, batches: int = 400) -> float:
    """Seconds of serving one training batch of 128 of 55,000 uint8 images, as ``ImageTensors`` serves it
    (``select``), or gathered by indexing with the tensor of indices as it did before."""
    images = torch.randint(0, 256, (TRAIN_IMAGES, 1, 28, 28), dtype=torch.uint8)
    dataset = ImageTensors(images, torch.zeros(TRAIN_IMAGES, dtype=torch.long))
    orders = [torch.randperm(TRAIN_IMAGES)[:128] for _ in range(batches)]
    start = time.perf_counter()
    for index in orders:
        dataset[index] if select else (images[index].float().div_(255), dataset.labels[index])
    return (time.perf_counter() - start) / batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data-root", type=Path, default=None, help="folder holding MNIST/raw/ ($VAE_DATA_DIR)")
    parser.add_argument("--override", nargs="*", default=[], help="more Hydra overrides")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu-step-costs.json"))
    args = parser.parse_args()
    root = (args.data_root or Path(os.environ.get("VAE_DATA_DIR", "data"))).resolve()
    overrides = [f"data.root={root}", "trainer.accelerator=cpu", "logger=csv", *args.override]
    report = {**provenance(torch.device("cpu")), "repeats": args.repeats}

    before, after = median_pair(lambda: is_available_seconds(True), lambda: is_available_seconds(False), args.repeats)
    report["nvml"] = {"before_s": before, "after_s": after, "saved_s_per_epoch": (before - after) * STEPS_PER_EPOCH}

    before, after = median_pair(lambda: batch_seconds(False), lambda: batch_seconds(True), args.repeats)
    report["data"] = {"before_s": before, "after_s": after, "saved_s_per_epoch": (before - after) * STEPS_PER_EPOCH}

    every, skipped = dispatches_per_step(overrides, skip=False), dispatches_per_step(overrides, skip=True)
    with tempfile.TemporaryDirectory() as out:
        _, _, trainer = build(compose_config(overrides, out))
        restore_batch_hooks(trainer)
        per_dispatch = statistics.median(dispatch_seconds(trainer) for _ in range(args.repeats))
    report["hooks"] = {
        "callbacks": len(trainer.callbacks),
        "dispatches_per_step": {"before": every, "after": skipped},
        "s_per_dispatch": per_dispatch,
        "saved_s_per_epoch": (every - skipped) * per_dispatch * STEPS_PER_EPOCH,
    }

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for part in ("nvml", "data", "hooks"):
        print(f"({part}) saves {report[part]['saved_s_per_epoch'] * 1000:.1f} ms an epoch of {STEPS_PER_EPOCH} steps")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
