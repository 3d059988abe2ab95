"""Launching a batch of sweep jobs into a folder that may already hold some of them."""

import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import DictConfig, open_dict

from vae.cluster.queue import sweep_jobs, wait_for_jobs
from vae.cluster.slurm import launched_on_slurm, request_problems
from vae.runs.continuation import (
    DONE,
    FAILED_POLICIES,
    KEEP,
    LIVE,
    RERUN,
    SKIP,
    Decision,
    decide,
    move_aside,
    refusal_message,
)
from vae.runs.job import job_settings
from vae.runs.launches import record_launch
from vae.runs.lock import SWEEP_LOCK, FolderIsLive, FolderLock
from vae.runs.run import MetricNotLogged, optimized_value

log = logging.getLogger(__name__)


class ContinuingLauncher:
    """Wraps a sweep's launcher so that each job first looks at the folder it would write to.

    Per job, the decision of :mod:`vae.runs.continuation`, the one the job itself would make: finished
    with the same settings: not launched; its recorded metrics come back to the sweeper as the job's return.
    Interrupted with a ``last.ckpt``: launched; the job resumes from it. Failed, or killed before its first
    checkpoint: its files are moved aside to ``<run>/attempts/`` and it is launched again (``failed=keep``
    returns it as failed instead). New: launched. Before anything is launched, every folder that holds a
    run of other settings, or a run that is live, refuses the whole batch, naming each.

    The sweep's own process holds the sweep folder's lock (``hold``): a second process continuing the same
    sweep is refused while this one runs.

    Job numbers (and so folder names) are those of an unbroken sweep: the jobs to launch go to the
    launcher in runs of consecutive numbers.
    """

    def __init__(self, launcher: Launcher, hydra_context: HydraContext, config: DictConfig, failed: str) -> None:
        if failed not in FAILED_POLICIES:
            sys.exit(f"hydra.sweeper.failed={failed!r}: must be one of {', '.join(FAILED_POLICIES)}")
        self.launcher, self.hydra_context, self.config, self.failed = launcher, hydra_context, config, failed
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.actions: dict[str, str] = {}  # this launch's: run folder -> new | resumed | skipped | rerun | kept failed
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.folders: dict[int, Path] = {}  # job number -> its run folder
        self._composed: dict[tuple, tuple[DictConfig, Path, dict]] = {}  # composing costs ~0.1 s a job
        self._lock: FolderLock | None = None

    def hold(self) -> None:
        """Takes the sweep folder's lock for as long as this process runs the sweep; exits with a message
        naming the process that runs it now, if one does. Before anything is written, a SLURM request no
        node of the partition can hold is refused (SLURM would keep it pending forever)."""
        if launched_on_slurm(self.config.hydra):
            problems = request_problems(self.launcher.params, str(self.config.trainer.accelerator))
            if problems:
                sys.exit("this sweep's SLURM jobs cannot run, so nothing was submitted:\n  " + "\n  ".join(problems))
        try:
            self._lock = FolderLock(self.sweep_dir, SWEEP_LOCK, what="sweep").acquire()
        except FolderIsLive as err:
            sys.exit(str(err))

    def check(self, jobs: Sequence[tuple[Sequence[str], int]]) -> list[tuple[DictConfig, Decision]]:
        """Each job's config and decision, given its overrides and number; exits with a message naming
        every folder that may not be run into (the sweepers check before they record the sweep)."""
        checked = [self.job(list(overrides), idx) for overrides, idx in jobs]
        # A sweep whose driver died: SLURM still runs (or holds queued) its jobs. Wait for them, then decide.
        on_slurm = {d.holder.slurm_job for _, d in checked if d.action == LIVE and d.holder and d.holder.slurm_job}
        if live := on_slurm | sweep_jobs(self.sweep_dir):
            wait_for_jobs(live)
            checked = [self.job(list(overrides), idx) for overrides, idx in jobs]
        refused = [decision for _, decision in checked if decision.refusal]
        if refused:
            sys.exit(refusal_message(refused))
        return checked

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        jobs = self.check([(overrides, initial_job_idx + i) for i, overrides in enumerate(job_overrides)])
        returns: list[JobReturn | None] = [None] * len(jobs)
        for i, (cfg, decision) in enumerate(jobs):
            state = decision.state
            if decision.action == SKIP:
                returns[i] = self._recorded_return(job_overrides[i], cfg, decision)
            elif decision.action == KEEP:
                error = HydraException(
                    f"{state.folder} failed before ({state.record.get('error', '')}); kept as failed"
                )
                returns[i] = JobReturn(overrides=list(job_overrides[i]), cfg=cfg, status=JobStatus.FAILED)
                returns[i].return_value = error
            elif decision.action == RERUN:
                moved = move_aside(state.folder, state.status)
                log.info(f"{state.folder}: its earlier attempt ({state.status}) was moved to {moved}")
            self.actions[state.folder.name] = DONE[decision.action]
        record_launch(self.sweep_dir, self.started, self.actions)
        pending = [i for i, r in enumerate(returns) if r is None]
        if len(pending) < len(jobs):
            log.info(f"Continuing the sweep in {self.sweep_dir}: {len(jobs) - len(pending)} of {len(jobs)} jobs done")
        for block in consecutive(pending):
            batch = [job_overrides[i] for i in block]
            for i, ret in zip(
                block, self.launcher.launch(batch, initial_job_idx=initial_job_idx + block[0]), strict=True
            ):
                returns[i] = ret
        return returns

    def job(self, overrides: list[str], idx: int) -> tuple[DictConfig, Decision]:
        """The config job ``idx`` would run, resolved as Hydra resolves it in the job, and its decision."""
        key = (tuple(overrides), idx)
        if key not in self._composed:
            self._composed[key] = self._compose(overrides, idx)
        task_cfg, folder, now = self._composed[key]
        checkpoint = task_cfg.get("ckpt_path")
        return task_cfg, decide(folder, now, checkpoint, self.failed)  # read now: an earlier batch may have run it

    def _compose(self, overrides: list[str], idx: int) -> tuple[DictConfig, Path, dict]:
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = sweep_config.hydra.job.num = idx
        folder, task_cfg, now = job_settings(sweep_config)
        self.folders[idx] = folder
        return task_cfg, folder, now

    def _recorded_return(self, overrides: Sequence[str], cfg: DictConfig, decision: Decision) -> JobReturn:
        """What the job would have returned, as the job itself computes it from the folder's record."""
        name, state = cfg.get("optimized_metric"), decision.state
        ret = JobReturn(overrides=list(overrides), cfg=cfg, working_dir=os.getcwd(), status=JobStatus.COMPLETED)
        try:
            ret.return_value = optimized_value(cfg, state.metrics)
        except MetricNotLogged as err:
            ret.status, ret.return_value = JobStatus.FAILED, err
        shown = f" ({name} = {state.metrics.get(name)})" if name else ""
        log.info(f"{state.folder}: already {state.status}, skipped{shown}")
        return ret


def consecutive(indices: list[int]) -> list[list[int]]:
    """[0, 1, 3, 4, 5] -> [[0, 1], [3, 4, 5]]."""
    blocks: list[list[int]] = []
    for i in indices:
        if blocks and blocks[-1][-1] == i - 1:
            blocks[-1].append(i)
        else:
            blocks.append([i])
    return blocks
