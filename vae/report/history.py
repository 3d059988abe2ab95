"""How each run of a sweep run again into its folder got where it is: the sweep's launches
(``<sweep>/launches.json``, :mod:`vae.runs.launches`), the checkpoints a run
was continued from (``resumed_from`` in its ``metrics.json``) and its earlier attempts (``<run>/attempts/``)."""

from collections import Counter

from vae.report.runs import Run
from vae.runs.record import LAUNCHES


def last_actions(launches: list[dict]) -> dict[str, str]:
    """For each run folder named in a launch, what the last launch naming it did with it (new, resumed,
    skipped, rerun, kept failed); ``in launch <n>`` added where that was not the latest launch (a search
    continued into its folder launches only the trials it runs, not the finished ones)."""
    actions: dict[str, str] = {}
    for number, launch in enumerate(launches, start=1):
        for name, action in launch.get("jobs", {}).items():
            actions[name] = action if number == len(launches) else f"{action} in launch {number}"
    return actions


def continued(run: Run) -> str:
    """The ``continued`` cell: the launch's action and the times the run was resumed in all, e.g.
    ``skipped``, ``resumed ×2``, ``skipped, resumed ×1``; empty when there is neither."""
    resumed = f"resumed ×{run.resumed}" if run.resumed else ""
    if resumed and run.launch.startswith("resumed"):
        return resumed + run.launch.removeprefix("resumed")  # e.g. resumed ×2 in launch 3
    return ", ".join(part for part in (run.launch, resumed) if part)


def launches_line(launches: list[dict]) -> str:
    """A sentence on the sweep's launches, when it was launched into its folder more than once."""
    if len(launches) < 2:
        return ""
    counts = Counter(launches[-1].get("jobs", {}).values())
    done = ", ".join(f"{n} {action}" for action, n in counts.items()) or "no jobs"
    return (
        f"The sweep was launched {len(launches)} times into this folder ({LAUNCHES}); the latest launch, started "
        f"{launches[-1].get('started', '?')}: {done}."
    )
