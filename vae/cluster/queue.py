"""The jobs SLURM runs or holds for a sweep: which they are, waiting for them, and submitit's polling of
them said once."""

import logging
import shutil
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)


class _SacctOnce(logging.Filter):
    """submitit asks ``sacct`` for its jobs' states at every poll; a cluster without accounting fails each
    time, and submitit warns each time (reading squeue instead). Said once, in a line that says so."""

    said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "Bypassing sacct error" not in record.getMessage():
            return True
        if self.said:
            return False
        self.said = True
        record.msg, record.args = "this cluster keeps no accounting (sacct fails): job states come from squeue", ()
        return True


logging.getLogger("submitit").addFilter(_SacctOnce())


def sweep_jobs(sweep: Path) -> set[str]:
    """The SLURM jobs of a sweep still queued or running (array tasks one by one): those whose submission
    script submitit wrote into the sweep's folder. Empty where no cluster answers."""
    if shutil.which("squeue") is None:
        return set()
    try:
        listed = subprocess.run(["squeue", "--noheader", "--array", "--format=%i|%o"], capture_output=True,
                                text=True, timeout=60)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return set()
    scripts = f"{Path(sweep).resolve()}/.submitit/"
    rows = [line.split("|", 1) for line in listed.stdout.splitlines() if "|" in line]
    return {job for job, command in rows if command.startswith(scripts)} if listed.returncode == 0 else set()


def wait_for_jobs(jobs: set[str], poll_s: float = 5.0) -> None:
    """Returns once none of the SLURM ``jobs`` is queued or running any more (``squeue`` lists none)."""
    while True:
        listed = subprocess.run(
            ["squeue", "--noheader", "--format=%i", f"--jobs={','.join(sorted(jobs))}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        alive = set(listed.stdout.split()) & jobs if listed.returncode == 0 else set()
        if not alive:
            return
        log.info(f"waiting for SLURM job(s) {', '.join(sorted(alive))}, which still run this sweep's runs")
        time.sleep(poll_s)
