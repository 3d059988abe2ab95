"""A run's record, ``<run>/metrics.json``: what a run folder holds, written and read here only.

A run writes it when it starts (status ``running``) and again when it ends (``completed``, ``failed``,
``interrupted`` by SIGTERM, or ``pruned`` by a search), each time with the settings it runs with, so that
the record, not the folder's name, says whether a folder holds the run a sweep would start there. It is
written aside and renamed into place: a process killed while writing leaves the previous record whole.

This module imports no torch: the report (a light command-line tool) reads records through it.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vae.runs.lock import LOCKS

RECORD = "metrics.json"
RUNNING, COMPLETED, FAILED, INTERRUPTED, PRUNED = "running", "completed", "failed", "interrupted", "pruned"
STATUSES = (RUNNING, COMPLETED, FAILED, INTERRUPTED, PRUNED)
UNRECORDED = "unrecorded"  # files but no record: a run of an older version killed before it wrote one
FINISHED = (COMPLETED, PRUNED)  # nothing left to run: a sweep continued into the folder skips it
UNFINISHED = (RUNNING, INTERRUPTED)  # killed, or stopped by a scheduler: continued from last.ckpt
ATTEMPTS = "attempts"  # <run>/attempts/<time>_<status>/: earlier attempts moved aside, never deleted
LAUNCHES = "launches.json"  # <sweep>/launches.json: what each launch of the sweep did with each job

# Keys that say where and how a run was started, not what it computes: a moved sweep folder, another data
# folder, or a continuation from a checkpoint is still the same run.
WHERE = ("paths.", "ckpt_path", "data.root")
# Keys the framework itself wrote into a logger's config to continue its logs (records of earlier versions
# hold them): never the user's settings.
WRITTEN_BY_THE_FRAMEWORK = ("purge_step", "run_id")


def read_record(folder: Path) -> dict | None:
    """The folder's record, None when it has none."""
    path = Path(folder) / RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def write_record(folder: Path, record: dict) -> None:
    """Writes ``record`` as the folder's ``metrics.json``, atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)  # Hydra makes it; a config composed in Python may not
    partial = folder / f".{RECORD}.part"
    partial.write_text(json.dumps(record, indent=2))
    os.replace(partial, folder / RECORD)


def status_of(record: dict | None) -> str | None:
    """A record's status (a record without one is a run that started); None without a record."""
    return None if record is None else record.get("status", RUNNING)


@dataclass
class FolderState:
    """What one run folder holds, against the settings of the run that would start there.

    ``status`` is None when the folder holds nothing of a run, ``unrecorded`` when it holds files but no
    record; ``differences`` lists the keys whose recorded values differ from ``now``.
    """

    folder: Path
    status: str | None = None
    record: dict = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)
    now: dict = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        """Its final metrics, and the best epoch's validation values (what a sweeper optimizes) over them."""
        return {**self.record.get("metrics", {}), **self.record.get("best_metrics", {})}

    @property
    def last_checkpoint(self) -> Path | None:
        path = self.folder / "checkpoints" / "last.ckpt"
        return path if path.is_file() else None


def folder_state(folder: Path, now: dict) -> FolderState:
    """What ``folder`` holds, compared with ``now``, the resolved config of the run that would start there."""
    folder = Path(folder)
    record = read_record(folder)
    if record is None:
        # Hydra's record and the logs are written before a run starts, and a lock before its record
        left = folder.is_dir() and any(p.name not in (".hydra", ATTEMPTS, *LOCKS) and p.suffix != ".log"
                                       for p in folder.iterdir())  # fmt: skip
        return FolderState(folder, UNRECORDED if left else None, now=now)
    then = record.get("config", {})
    # paths inside the folder were recorded under the folder's old place if it was moved
    old, new = then.get("paths", {}).get("output_dir"), now.get("paths", {}).get("output_dir")
    return FolderState(folder, status_of(record), record, differing_keys(then, now, old, new), now)


def differing_keys(then: dict, now: dict, old_dir: str | None = None, new_dir: str | None = None) -> list[str]:
    """Dotted keys whose values differ between two resolved configs: the user's settings only."""
    a, b = flat(then), flat(now)
    if old_dir and new_dir:
        a = {k: v.replace(old_dir, new_dir) if isinstance(v, str) else v for k, v in a.items()}
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k, "<unset>") != b.get(k, "<unset>"))
    return [k for k in keys if not _not_a_setting(k)]


def _not_a_setting(key: str) -> bool:
    parts = key.split(".")
    written = len(parts) == 3 and parts[0] == "logger" and parts[2] in WRITTEN_BY_THE_FRAMEWORK
    return written or key.startswith(WHERE)


def flat(tree: Any, prefix: str = "") -> dict:
    """A nested config as ``{dotted key: value}``; an empty dict stays a value of its own."""
    if isinstance(tree, dict):
        items = {}
        for key, value in tree.items():
            items.update(flat(value, f"{prefix}{key}."))
        return items or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): tree}
