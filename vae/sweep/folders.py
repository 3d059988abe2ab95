"""What a run folder already holds when a sweep is run again into its folder, and what to do with it.

A run writes ``metrics.json`` when it starts (status ``running``) and again when it ends (``completed``,
``failed``, ``interrupted`` by SIGTERM, or ``pruned`` by a search), each time with its resolved config.
That record, not the folder's name, says whether the folder holds the run a sweep would now start. Files
without a record (``unrecorded``: an older version's run killed early) are moved aside, like a failed run's.
"""

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

FINISHED = ("completed", "pruned")  # nothing left to run: a sweep continued into the folder skips it
UNFINISHED = ("running", "interrupted")  # killed, or stopped by a scheduler: continue from last.ckpt
ATTEMPTS = "attempts"  # <run>/attempts/<time>_<status>/: earlier attempts moved aside, never deleted
LAUNCHES = "launches.json"  # <sweep>/launches.json: what each launch of the sweep did with each job
# Keys that say where and how a run was started rather than what it computes: a moved sweep folder, another
# data folder, or a continuation from a checkpoint is still the same run.
WHERE = ("paths.", "ckpt_path", "data.root", "logger.tensorboard.purge_step")


@dataclass
class Recorded:
    """The state of one run folder: ``status`` is None when the folder holds no run's record."""

    folder: Path
    status: str | None = None
    summary: dict = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)  # keys whose recorded values differ from the config
    now: dict = field(default_factory=dict)  # the resolved config it was compared with

    @property
    def metrics(self) -> dict[str, float]:
        """Its final metrics, and the best epoch's validation values (what a sweeper optimizes) over them."""
        return {**self.summary.get("metrics", {}), **self.summary.get("best_metrics", {})}

    @property
    def last_checkpoint(self) -> Path | None:
        path = self.folder / "checkpoints" / "last.ckpt"
        return path if path.is_file() else None

    @property
    def action(self) -> str:
        """What a sweep continued into this folder does: new, skip, resume or rerun (a failed run, or one
        killed before its first checkpoint)."""
        if self.status is None:
            return "new"
        if self.status in FINISHED:
            return "skip"
        if self.status in UNFINISHED and self.last_checkpoint:
            return "resume"
        return "rerun"


def recorded(folder: Path, config: DictConfig | dict) -> Recorded:
    """What ``folder`` holds, compared with the resolved ``config`` of the run a sweep would start there."""
    path = folder / "metrics.json"
    now = OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else config
    if not path.is_file():
        # Hydra's record and log are written before the run starts; anything else is a run that left no record
        left = folder.is_dir() and any(
            p.name not in (".hydra", ATTEMPTS) and p.suffix != ".log" for p in folder.iterdir()
        )
        return Recorded(folder, "unrecorded" if left else None, now=now)
    summary = json.loads(path.read_text())
    then = summary.get("config", {})
    # paths inside the folder were recorded under the folder's old place if it was moved
    old, new = then.get("paths", {}).get("output_dir"), now.get("paths", {}).get("output_dir")
    return Recorded(folder, summary.get("status", "running"), summary, differing_keys(then, now, old, new), now)


def differing_keys(then: dict, now: dict, old_dir: str | None = None, new_dir: str | None = None) -> list[str]:
    """Dotted keys whose values differ between two resolved configs, leaving out the keys in WHERE."""
    a, b = _flat(then), _flat(now)
    if old_dir and new_dir:
        a = {k: v.replace(old_dir, new_dir) if isinstance(v, str) else v for k, v in a.items()}
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k, "<unset>") != b.get(k, "<unset>"))
    return [k for k in keys if not k.startswith(WHERE)]


def describe(records: list[Recorded]) -> str:
    """The message refusing a sweep whose folders hold runs of other settings."""
    lines = []
    for record in records:
        then, now, keys = _flat(record.summary.get("config", {})), _flat(record.now), record.differences
        shown = ", ".join(f"{k}: {then.get(k, '<unset>')!r} there, {now.get(k, '<unset>')!r} now" for k in keys[:8])
        more = f" and {len(keys) - 8} more" if len(keys) > 8 else ""
        lines.append(f"{record.folder} holds a run of other settings ({shown}{more})")
    return (
        "this sweep would continue into folders that hold runs of other settings, so nothing was run:\n  "
        + "\n  ".join(lines)
        + "\nRun the sweep into a new folder (leave hydra.sweep.dir unset), or repeat the settings it was run with "
        "(python train.py resume=<sweep folder> repeats them)."
    )


def move_aside(folder: Path, status: str, keep: tuple[str, ...] = ()) -> Path:
    """Moves what ``folder`` holds (but ``keep`` and earlier attempts) into ``<folder>/attempts/<time>_<status>``."""
    stamp, n = time.strftime("%Y-%m-%d_%H-%M-%S"), 0
    while (target := folder / ATTEMPTS / f"{stamp}_{status}{f'_{n}' if n else ''}").exists():
        n += 1  # two attempts moved aside within one second
    target.mkdir(parents=True)
    for entry in folder.iterdir():
        if entry.name not in (ATTEMPTS, *keep):
            shutil.move(str(entry), target / entry.name)
    return target


def _flat(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        items = {}
        for key, value in tree.items():
            items.update(_flat(value, f"{prefix}{key}."))
        return items or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): tree}
