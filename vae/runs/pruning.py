"""Pruning a search's trials from their per-epoch validation values (Optuna's pruners), inside the run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from vae.cluster.slurm import launched_on_slurm
from vae.runs import in_a_sweep

if TYPE_CHECKING:  # imported where a search needs it: every run imports this module
    import optuna

log = logging.getLogger(__name__)
SEARCH = "hydra_plugins.vae_sweepers.search.OptunaSearch"  # the sweeper whose trials report here


class TrialPruning(L.Callback):
    """Reports the monitored value of every validation to the run's Optuna trial, and ends training
    after the epoch whose value the study's pruner finds trailing the other trials' at that epoch (not
    after the last epoch: that trial has cost all it would, and completes).

    The trial lives in the study's storage (a file in the sweep folder: ``storage_url``), where the sweeper asked for
    it; the run opens it by its number, which is the job's number. Rank 0 reports and decides, and
    every rank stops.

    Args:
        storage: the study's storage URL.
        study_name: the study's name in it.
        trial_number: the trial this run is.
        monitor: the logged validation value the study optimizes, e.g. val/elbo.
        pruner: decides from the study's trials; pruners are not kept in the storage, so the run builds
            the one the sweeper was configured with.
    """

    def __init__(self, storage: str, study_name: str, trial_number: int, monitor: str, pruner) -> None:
        self.storage, self.study_name, self.trial_number = storage, study_name, trial_number
        self.monitor, self.pruner = monitor, pruner
        self.pruned, self.pruned_epoch, self.reason = False, None, ""
        self._trial = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or not trainer.is_global_zero:
            return
        import optuna

        storage = open_storage(self.storage)
        study = optuna.load_study(study_name=self.study_name, storage=storage, pruner=self.pruner)
        self._trial = trial_of(study, storage, self.trial_number)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        prune = False
        if trainer.is_global_zero and self.monitor in trainer.callback_metrics:
            value = float(trainer.callback_metrics[self.monitor])
            self._trial.report(value, step=trainer.current_epoch)
            # after the last epoch there is nothing left to save: the trial completes, tested like any run
            # (max_epochs=-1: no last epoch, the run ends by max_steps or max_time)
            last = trainer.max_epochs is not None and 0 <= trainer.max_epochs - 1 <= trainer.current_epoch
            prune = not last and self._trial.should_prune()
            if prune:
                self.reason = f"{self.monitor} = {value:.4g} at epoch {trainer.current_epoch} trails the study's trials"
        if trainer.strategy.broadcast(prune, src=0):
            self.pruned, self.pruned_epoch = True, trainer.current_epoch
            trainer.should_stop = True


JOURNAL = "journal:"  # a storage "URL" of Optuna's journal file: journal:<path>


def storage_url(url: str | None, sweep_dir: Path, on_a_cluster: bool) -> str:
    """The study's storage. None: a file in the sweep folder, the one a study is kept in already, else a
    journal file on a cluster (its sweep folders sit on shared file systems, where SQLite's locking is
    unreliable; Optuna's journal file appends under a lock that holds there), else a SQLite file."""
    if url is not None:
        return url
    database, journal = sweep_dir / "optuna.db", sweep_dir / "optuna.journal"
    if not database.exists() and (journal.exists() or on_a_cluster):
        return f"{JOURNAL}{journal}"
    return f"sqlite:///{database}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The storage at ``url``: a database URL Optuna takes, or ``journal:<path>``."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if url.startswith(JOURNAL):
        path = Path(url.removeprefix(JOURNAL))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    return optuna.storages.get_storage(url)


def trial_of(study: optuna.Study, storage: optuna.storages.BaseStorage, number: int) -> optuna.trial.Trial:
    """Trial ``number`` of ``study`` (kept in ``storage``), to report to or to tell how it ended."""
    import optuna

    study_id = storage.get_study_id_from_name(study.study_name)
    return optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, number))


def trial_pruning(cfg: DictConfig) -> TrialPruning | None:
    """The pruning callback of a trial of the project's Optuna search with a pruner; None otherwise."""
    if not in_a_sweep():
        return None
    hydra_cfg = HydraConfig.get()
    sweeper = hydra_cfg.sweeper
    if sweeper.get("_target_") != SEARCH or sweeper.get("pruner") is None or not cfg.get("optimized_metric"):
        return None
    pruner = hydra.utils.instantiate(sweeper.pruner)
    # the storage the sweeper chose, resolved the same way
    storage = storage_url(sweeper.storage, Path(hydra_cfg.sweep.dir), launched_on_slurm(hydra_cfg))
    return TrialPruning(storage, sweeper.study_name, int(hydra_cfg.job.num), cfg.optimized_metric, pruner)
