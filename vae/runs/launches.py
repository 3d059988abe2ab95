"""``<sweep>/launches.json``: what each launch of a sweep into its folder did with each job (new, resumed,
skipped, rerun, kept failed), which the report shows per run. Updated under a lock: two processes may
launch into one folder (a search's parallel trials, a continuation refused a moment later)."""

import json
import os
from pathlib import Path

from filelock import FileLock

from vae.runs.record import LAUNCHES


def read_launches(sweep: Path) -> list[dict]:
    """The sweep's launches into its folder, oldest first: ``{"started": time, "jobs": {run folder: action}}``
    each; none for a sweep run before launches were recorded."""
    path = Path(sweep) / LAUNCHES
    return json.loads(path.read_text()) if path.is_file() else []


def record_launch(sweep: Path, started: str, jobs: dict[str, str]) -> None:
    """Sets the entry of the launch that ``started`` then to ``jobs`` (appended the first time)."""
    sweep = Path(sweep)
    sweep.mkdir(parents=True, exist_ok=True)
    with FileLock(sweep / f".{LAUNCHES}.lock"):
        launches = [launch for launch in read_launches(sweep) if launch["started"] != started]
        launches.append({"started": started, "jobs": jobs})
        partial = sweep / f".{LAUNCHES}.part"
        partial.write_text(json.dumps(launches, indent=2))
        os.replace(partial, sweep / LAUNCHES)
