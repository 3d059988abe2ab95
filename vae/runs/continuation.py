"""Whether a run starts, is skipped, continues or runs again in its folder: decided here, once.

The sweep's launcher asks before it launches a job (``hydra_plugins.vae_sweepers``), and the job asks again
when it starts (``vae.runs.run``), for the job a scheduler requeued or a run given a folder by hand. Both
get the same answer from the folder's record (:mod:`vae.runs.record`) and lock (:mod:`vae.runs.lock`):

=====================================================  ==============================================
the folder holds                                       the run
=====================================================  ==============================================
nothing                                                starts (``new``)
a finished run (completed, pruned) of the same         is skipped (``skip``): nothing is touched
settings
a killed or interrupted run with a ``last.ckpt``       continues from it (``resume``)
a failed run, or files of a run killed before its      runs again (``rerun``), the earlier attempt moved
first checkpoint                                       to ``<run>/attempts/<time>_<status>/``
                                                       (``failed=keep``: stays failed, ``keep``)
a run of other settings                                is refused, nothing touched
a run that is live (its lock is held)                  is refused, nothing touched
=====================================================  ==============================================

A run given a checkpoint by hand (``ckpt_path``) continues from it whatever the record says (that is how a
run is continued to more epochs), unless the folder is live.
"""

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from vae.runs.lock import LOCKS, RUN_LOCK, Holder, holder_if_live
from vae.runs.record import ATTEMPTS, FAILED, FINISHED, UNFINISHED, FolderState, flat, folder_state

NEW, SKIP, RESUME, RERUN, KEEP = "new", "skip", "resume", "rerun", "keep"
LIVE, OTHER_SETTINGS = "live", "other settings"  # refused: nothing may be done in the folder now
FAILED_POLICIES = ("rerun", "keep")  # hydra.sweeper.failed: what to do with a folder holding a failed run
# What a launch did with each job, as launches.json and the report say it.
DONE = {NEW: "new", SKIP: "skipped", RESUME: "resumed", RERUN: "rerun", KEEP: "kept failed"}


@dataclass
class Decision:
    """What to do with a run folder; ``refusal`` says why nothing may be done there (None: go ahead)."""

    action: str
    state: FolderState
    checkpoint: Path | None = None  # the checkpoint a resumed run continues from
    refusal: str | None = None
    holder: Holder | None = None  # who runs in the folder now (LIVE)


def decide(
    folder: Path,
    now: dict,
    checkpoint: str | None = None,
    failed: str = "rerun",
    live: bool = True,
) -> Decision:
    """The one continuation decision (the table above).

    Args:
        folder: the run's folder.
        now: the resolved config of the run that would start there.
        checkpoint: the run's ``ckpt_path`` as given: ``last`` (the folder's ``last.ckpt``), a file, or None.
        failed: ``rerun`` or ``keep`` a folder holding a failed run.
        live: whether to look at the folder's lock (False for a process that holds it).
    """
    state = folder_state(folder, now)
    holder = holder_if_live(folder, RUN_LOCK) if live else None
    if holder is not None:
        return Decision(LIVE, state, refusal=holder[1], holder=holder[0])
    if checkpoint is not None:  # continued by hand, from a checkpoint the user named
        path = state.last_checkpoint if checkpoint == "last" else Path(str(checkpoint))
        if path is not None:
            return Decision(RESUME, state, path)
        return Decision(RERUN if state.status else NEW, state)
    if state.status is None:
        return Decision(NEW, state)
    if state.differences:
        return Decision(OTHER_SETTINGS, state, refusal=other_settings(state))
    if state.status in FINISHED:
        return Decision(SKIP, state)
    if state.status in UNFINISHED and state.last_checkpoint:
        return Decision(RESUME, state, state.last_checkpoint)
    if state.status == FAILED and failed == "keep":
        return Decision(KEEP, state)
    return Decision(RERUN, state)


def other_settings(state: FolderState) -> str:
    then, now, keys = flat(state.record.get("config", {})), flat(state.now), state.differences
    shown = ", ".join(f"{k}: {then.get(k, '<unset>')!r} there, {now.get(k, '<unset>')!r} now" for k in keys[:8])
    more = f" and {len(keys) - 8} more" if len(keys) > 8 else ""
    return f"{state.folder} holds a run of other settings ({shown}{more})"


def refusal_message(decisions: list[Decision], what: str = "sweep") -> str:
    """The message refusing a sweep (or a run) whose folders may not be run into now; nothing was run."""
    refused = [d for d in decisions if d.refusal]
    kinds = {d.action for d in refused}
    hold = {frozenset({OTHER_SETTINGS}): "hold runs of other settings", frozenset({LIVE}): "are running now"}
    lines = "\n  ".join(d.refusal for d in refused)
    message = f"this {what} would continue into folders that {hold.get(frozenset(kinds), 'may not be run into now')}"
    message += f", so nothing was run:\n  {lines}"
    if OTHER_SETTINGS in kinds:
        new = "hydra.sweep.dir" if what == "sweep" else "hydra.run.dir"
        message += (
            f"\nRun the {what} into a new folder (leave {new} unset), or repeat the settings it was run with "
            f"(python train.py resume=<{what} folder> repeats them)."
        )
    return message


def move_aside(folder: Path, status: str, keep: tuple[str, ...] = ()) -> Path:
    """Moves what ``folder`` holds (but ``keep``, its lock and earlier attempts) into
    ``<folder>/attempts/<time>_<status>``, never deleting anything."""
    stamp, n = time.strftime("%Y-%m-%d_%H-%M-%S"), 0
    while (target := folder / ATTEMPTS / f"{stamp}_{status}{f'_{n}' if n else ''}").exists():
        n += 1  # two attempts moved aside within one second
    target.mkdir(parents=True)
    for entry in folder.iterdir():
        if entry.name not in (ATTEMPTS, *LOCKS, *keep):
            shutil.move(str(entry), target / entry.name)
    return target
