"""Launching a batch of sweep jobs into a folder that may already hold some of them."""

import copy
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from vae.sweep.folders import LAUNCHES, Recorded, describe, move_aside, recorded

log = logging.getLogger(__name__)
FAILED = ("rerun", "keep")  # hydra.sweeper.failed: run a failed job again (old files moved aside), or keep it


class ContinuingLauncher:
    """Wraps a sweep's launcher so that each job first looks at the folder it would write to.

    Per job, from the folder's ``metrics.json`` (see ``vae.sweep.folders``): finished (completed, or
    pruned by a search) with the same resolved config: not launched; its recorded metrics come back to the
    sweeper as the job's return. Interrupted with a ``last.ckpt``: launched; the job resumes from it
    (``vae.training``). Failed, or killed before its first checkpoint: its files are moved aside to
    ``<run>/attempts/`` and it is launched again (``failed=keep`` returns it as failed instead). New:
    launched. Before anything is launched, every folder whose record differs from the config the job
    would run refuses the whole batch, naming the folders and keys.

    Job numbers (and so folder names) are those of an unbroken sweep: the jobs to launch go to the
    launcher in runs of consecutive numbers.
    """

    def __init__(self, launcher: Launcher, hydra_context: HydraContext, config: DictConfig, failed: str) -> None:
        if failed not in FAILED:
            raise HydraException(f"hydra.sweeper.failed={failed!r}: allowed values are {', '.join(FAILED)}")
        self.launcher, self.hydra_context, self.config, self.failed = launcher, hydra_context, config, failed
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.actions: dict[str, str] = {}  # this launch's: run folder -> new | resumed | skipped | rerun | kept failed
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.folders: dict[int, Path] = {}  # job number -> its run folder
        self._composed: dict[tuple, tuple[DictConfig, Path, dict]] = {}  # composing costs ~0.1 s a job

    def check(self, jobs: Sequence[tuple[Sequence[str], int]]) -> list[tuple[DictConfig, Recorded]]:
        """Each job's config and folder record, given its overrides and number; exits with a message naming
        every folder that holds a run of other settings (the sweepers check before they record the sweep)."""
        checked = [self.job(list(overrides), idx) for overrides, idx in jobs]
        differing = [rec for _, rec in checked if rec.differences]
        if differing:
            sys.exit(describe(differing))
        return checked

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        jobs = self.check([(overrides, initial_job_idx + i) for i, overrides in enumerate(job_overrides)])
        returns: list[JobReturn | None] = [None] * len(jobs)
        for i, (cfg, rec) in enumerate(jobs):
            action = rec.action
            if action == "skip":
                returns[i] = self._recorded_return(job_overrides[i], cfg, rec)
            elif action == "rerun" and self.failed == "keep" and rec.status == "failed":
                error = HydraException(f"{rec.folder} failed before ({rec.summary.get('error', '')}); kept as failed")
                returns[i] = JobReturn(overrides=list(job_overrides[i]), cfg=cfg, status=JobStatus.FAILED)
                returns[i].return_value = error
                action = "kept failed"
            elif action == "rerun":
                moved = move_aside(rec.folder, rec.status)
                log.info(f"{rec.folder}: its earlier attempt ({rec.status}) was moved to {moved}")
            self.actions[rec.folder.name] = {"skip": "skipped", "resume": "resumed"}.get(action, action)
        self._write_launches()
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

    def job(self, overrides: list[str], idx: int) -> tuple[DictConfig, Recorded]:
        """The config job ``idx`` would run, resolved as Hydra resolves it in the job, and its folder's record."""
        key = (tuple(overrides), idx)
        if key not in self._composed:
            self._composed[key] = self._compose(overrides, idx)
        task_cfg, folder, now = self._composed[key]
        return task_cfg, recorded(folder, now)  # read now: an earlier batch may have run it

    def _compose(self, overrides: list[str], idx: int) -> tuple[DictConfig, Path, dict]:
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = sweep_config.hydra.job.num = idx
        previous = HydraConfig.instance().cfg
        try:
            HydraConfig.instance().set_config(sweep_config)
            folder = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
            with read_write(sweep_config.hydra.runtime), open_dict(sweep_config.hydra.runtime):
                sweep_config.hydra.runtime.output_dir = os.path.abspath(folder)
            HydraConfig.instance().set_config(sweep_config)
            task_cfg = copy.deepcopy(sweep_config)
            with read_write(task_cfg), open_dict(task_cfg):
                del task_cfg["hydra"]
            now = OmegaConf.to_container(task_cfg, resolve=True)
        finally:
            if previous is not None:
                HydraConfig.instance().set_config(previous)
        self.folders[idx] = folder
        return task_cfg, folder, now

    def _recorded_return(self, overrides: Sequence[str], cfg: DictConfig, rec: Recorded) -> JobReturn:
        name = cfg.get("optimized_metric")
        value = rec.metrics.get(name) if name else None
        log.info(f"{rec.folder}: already {rec.status}, skipped" + (f" ({name} = {value})" if name else ""))
        ret = JobReturn(overrides=list(overrides), cfg=cfg, working_dir=os.getcwd(), status=JobStatus.COMPLETED)
        ret.return_value = value
        return ret

    def _write_launches(self) -> None:
        """Appends (or updates) this launch's entry in ``<sweep>/launches.json``, which the report reads."""
        path = self.sweep_dir / LAUNCHES
        launches = json.loads(path.read_text()) if path.is_file() else []
        if launches and launches[-1]["started"] == self.started:
            launches.pop()
        launches.append({"started": self.started, "jobs": self.actions})
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(launches, indent=2))


def consecutive(indices: list[int]) -> list[list[int]]:
    """[0, 1, 3, 4, 5] -> [[0, 1], [3, 4, 5]]."""
    blocks: list[list[int]] = []
    for i in indices:
        if blocks and blocks[-1][-1] == i - 1:
            blocks[-1].append(i)
        else:
            blocks.append([i])
    return blocks
