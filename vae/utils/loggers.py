"""The loggers besides TensorBoard: a CSV file and an MLflow or W&B run that a resumed run continues (not
new ones), MLflow's local store made safely by parallel jobs, a W&B run grouped with its sweep, and where
pictures go besides TensorBoard."""

import copy
import csv
import hashlib
import logging
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from omegaconf import DictConfig, open_dict

from vae.utils.event_files import use_compiled_checksums
from vae.utils.steps import checkpoint_step

log = logging.getLogger(__name__)


class CSVLogger(LightningCSVLogger):
    """Lightning's ``CSVLogger`` (``<log_dir>/metrics.csv``, one row per logging step), continued by a
    resumed run: Lightning's deletes an existing ``metrics.csv``; this one keeps its rows logged
    before ``purge_step`` (the resumed run logs the rest again), as TensorBoard's ``purge_step`` does.

    Args:
        purge_step: the step a resumed run logs first (set by ``vae.training``); None: a new run.
        *args, **kwargs: Lightning's ``CSVLogger``.
    """

    def __init__(self, *args, purge_step: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.purge_step = purge_step

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is not None or self.purge_step is None:
            return super().experiment
        path = Path(self.log_dir) / "metrics.csv"
        kept, header = [], []
        if path.is_file():
            with path.open(newline="") as file:
                reader = csv.DictReader(file)
                header = list(reader.fieldnames or [])
                kept = [row for row in reader if row.get("step") and int(row["step"]) < self.purge_step]
        for name in ("metrics.csv", "hparams.yaml"):  # rewritten below and at the fit's start; Lightning's
            (path.parent / name).unlink(missing_ok=True)  # writer would warn that it deletes them
        experiment = super().experiment
        if header:
            with path.open("w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=header)
                writer.writeheader()
                writer.writerows(kept)
            experiment.metrics_keys = header  # new columns are added to the file as Lightning adds them
        return experiment


def unlogged_params(logger: MLFlowLogger, params: dict) -> dict:
    """The ``params`` an MLflow run does not hold yet. MLflow keeps a run's parameters as first logged, so
    a continued run (e.g. to more epochs) logs only new ones; the values it changed are logged as a
    warning (the run folder's ``metrics.json`` holds its whole config)."""
    held = logger.experiment.get_run(logger.run_id).data.params
    params = {key: str(value) for key, value in params.items()}  # as MLflow holds them
    changed = [f"{key}: {held[key]} -> {value}" for key, value in params.items() if held.get(key, value) != value]
    if changed:
        log.warning(f"MLflow run {logger.run_id} keeps its first parameters; changed now: {', '.join(changed)}")
    return {key: value for key, value in params.items() if key not in held}


def picture_stores(loggers: list[Logger]) -> list[Callable[[Path, str, int], None]]:
    """Where a picture's PNG goes besides TensorBoard, each a call ``store(path, tag, step)``: every MLflow run
    as the artifact ``images/<folder>/<name>``, every W&B run as the image ``tag`` at the trainer's ``step``."""
    stores = []
    for logger in loggers:
        if isinstance(logger, MLFlowLogger):
            stores.append(partial(_mlflow_artifact, logger.experiment, logger.run_id))
        elif isinstance(logger, WandbLogger):
            stores.append(partial(_wandb_image, logger))
    return stores


def _mlflow_artifact(client, run_id: str, path: Path, tag: str, step: int) -> None:
    client.log_artifact(run_id, str(path), f"images/{path.parent.name}")


def _wandb_image(logger: WandbLogger, path: Path, tag: str, step: int) -> None:
    logger.log_image(tag, [str(path)], step=step)


def log_evaluation(loggers: list[Logger], values: dict[str, float], figures: dict[str, Path], step: int) -> None:
    """The evaluation's scalars (``test/nll``, the sample metrics, ...) and figures (``tag: PNG``) at ``step`` to
    every logger but TensorBoard, which has them in an event file of their own in the run folder
    (``vae.evaluation.suite``)."""
    for logger in loggers:
        if not isinstance(logger, TensorBoardLogger):
            logger.log_metrics(values, step)
            logger.save()
    for store in picture_stores(loggers):
        for tag, path in figures.items():
            store(path, tag, step)


def finish_runs(loggers: list[Logger], failed: bool) -> None:
    """Ends the W&B run of every W&B logger that started one. Lightning's logger takes a run in progress as
    its own, so the next run in this process (a sweep's next job under Hydra's basic launcher, a test) would
    otherwise log into this one."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish(exit_code=1 if failed else 0)


def wandb_run_id(run_folder: str | Path) -> str:
    """The W&B run id of the run in ``run_folder``: the same for every process of the run, so a resumed run
    logs under its first id (offline, into a folder of its own that ``wandb sync`` uploads to the same run)."""
    return hashlib.sha1(str(Path(run_folder).resolve()).encode()).hexdigest()[:16]


def sweep_group() -> str | None:
    """The sweep folder's name when this process is a job of a sweep (the W&B group of its runs, their MLflow tag
    ``sweep``), else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).name


def ready_sqlite_store(uri: str, experiment_name: str, artifact_location: str | None) -> None:
    """Makes the SQLite store of ``uri`` and its experiment, once, under a file lock. The jobs of a
    parallel sweep start together: each would migrate the new database and create the experiment,
    and all but one would fail."""
    from filelock import FileLock
    from mlflow.tracking import MlflowClient

    database = Path(uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)  # SQLite makes no folders
    with FileLock(f"{database}.lock"):
        client = MlflowClient(uri)
        if client.get_experiment_by_name(experiment_name) is None:  # the first call makes the database
            client.create_experiment(experiment_name, artifact_location=artifact_location)


def mlflow_run_of(tracking_uri: str, experiment_name: str, run_folder: str) -> str | None:
    """The MLflow run an earlier process of the run in ``run_folder`` logged to (its ``run_folder``
    tag), to continue it; None when there is none. The folder may have any name: MLflow's filter takes
    a value in either quote, and one holding both is matched here among the runs a LIKE finds."""
    from mlflow.tracking import MlflowClient  # an optional extra: imported only when a config uses it

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return None
    if "'" not in run_folder or '"' not in run_folder:
        quote = "'" if "'" not in run_folder else '"'
        wanted = f"tags.run_folder = {quote}{run_folder}{quote}"
    else:  # the longest part without quotes, and the exact name checked below
        part = max(re.split("['\"]", run_folder), key=len)
        wanted = f"tags.run_folder LIKE '%{part}%'"
    runs = client.search_runs(  # the newest first: a sweep may have rerun the folder's failed run from scratch
        [experiment.experiment_id], filter_string=wanted, order_by=["attributes.start_time DESC"]
    )
    return next((run.info.run_id for run in runs if run.data.tags.get("run_folder") == run_folder), None)


def prepare_loggers(loggers: DictConfig | None, checkpoint: dict) -> DictConfig | None:
    """The logger configs as this run builds them, in a copy (the run's own config keeps the user's
    settings): a run resumed from ``checkpoint`` continues its logs where the checkpoint was taken, an
    MLflow SQLite store gets its folder, an MLflow or W&B run its sweep (a tag, a group), a W&B run its
    id, and TensorBoard's event files their compiled checksum (:mod:`vae.utils.event_files`).

    What the interrupted run logged from the checkpoint's step on is dropped (TensorBoard's
    ``purge_step``, this module's CSV logger) or, in MLflow, which cannot delete values, left in the
    run's history beside the values logged again.
    """
    use_compiled_checksums()
    if loggers is None:
        return None
    loggers = copy.deepcopy(loggers)
    step = checkpoint_step(checkpoint) if checkpoint else None
    for logger in loggers.values():
        if not isinstance(logger, DictConfig) or "_target_" not in logger:
            continue
        target = str(logger._target_)
        with open_dict(logger):
            if step is not None and target in (f"{__name__}.CSVLogger", "lightning.pytorch.loggers.TensorBoardLogger"):
                logger.purge_step = step
            if target == "lightning.pytorch.loggers.MLFlowLogger":
                uri = str(logger.get("tracking_uri") or "")
                if uri.startswith("sqlite:///"):
                    ready_sqlite_store(uri, logger.experiment_name, logger.get("artifact_location"))
                if sweep_group() and not (logger.get("tags") or {}).get("sweep"):  # "Group by" in MLflow's UI
                    logger.tags = {**(logger.get("tags") or {}), "sweep": sweep_group()}
                folder = (logger.get("tags") or {}).get("run_folder")
                if step is not None and folder and not logger.get("run_id"):
                    logger.run_id = mlflow_run_of(uri, logger.experiment_name, folder)
            if target == "lightning.pytorch.loggers.WandbLogger":
                logger.id = logger.get("id") or wandb_run_id(logger.save_dir)
                logger.group = logger.get("group") or sweep_group()
    return loggers
