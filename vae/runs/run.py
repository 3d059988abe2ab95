"""One training run as the owner of its folder: its lock, its record, and how it ends whatever happens.

``train()`` reads as a straight line inside ``with Run(cfg) as run``; the context records the ends that
are not the normal one. A failure is recorded ``failed`` (the error, the metrics so far, the last good
checkpoint) before it propagates; SIGTERM (:mod:`vae.runs.interrupt`) is recorded ``interrupted`` and
the process exits with 143. A refusal leaves the folder as it found it: until the run has started (its
``running`` record written), a failure is recorded only in a folder that holds no record of another run,
and never where another process is live.
"""

import logging
import math
import signal
import time
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from vae.config import ConfigError
from vae.runs import in_a_sweep
from vae.runs.continuation import KEEP, LIVE, RERUN, RESUME, SKIP, Decision, decide, move_aside
from vae.runs.interrupt import Sigterm
from vae.runs.lock import FolderIsLive, FolderLock
from vae.runs.outcome import best_scores, checkpoints, final_metrics, load_checkpoint
from vae.runs.pruning import trial_pruning
from vae.runs.record import COMPLETED, FAILED, INTERRUPTED, RUNNING, read_record, write_record
from vae.utils.loggers import finish_runs
from vae.utils.steps import checkpoint_step

log = logging.getLogger("vae.training")


class MetricNotLogged(ConfigError):
    """``optimized_metric`` names a value the run did not log: a sweeper cannot rank it."""


class Run:
    """The context of one training run in its folder, ``cfg.paths.output_dir`` (see the module).

    Rank 0 alone holds the folder's lock and writes the record; every process decides alike how the run
    starts, and every process stops on SIGTERM.
    """

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg, self.folder = cfg, Path(cfg.paths.output_dir)
        self.zero = rank_zero_only.rank == 0
        self.started = time.perf_counter()
        self.sigterm = Sigterm()
        self.lock: FolderLock | None = None
        self.trainer: L.Trainer | None = None
        self.n_params: int | None = None
        self.pruning = None
        self.resumed: dict = {}  # the contents of the checkpoint the run continues from
        self.history: dict = {}  # resumed_from: every checkpoint the run was continued from
        self.config: dict | None = None  # the settings as given, recorded with every status
        self.owns_record = False
        self.metrics: dict[str, float] = {}  # the run's final values, once it has them

    def __enter__(self) -> "Run":
        self.sigterm.install()
        return self

    def __exit__(self, kind, err, traceback) -> bool:
        self.sigterm.hold()  # a record being written is not cut short
        try:
            if kind is not None and issubclass(kind, SIGTERMException):
                self._record_interrupted()
                self.sigterm.requeue()  # a SLURM job warned of its end: requeued by submitit, which exits
                raise SystemExit(128 + signal.SIGTERM) from None  # the shell's code for "terminated"
            if kind is not None and issubclass(kind, Exception):
                self._record_failed(err)
        finally:
            if self.trainer is not None:
                finish_runs(self.trainer.loggers, failed=kind is not None)
            if self.lock is not None:
                self.lock.release()
            self.sigterm.restore()
        return False

    def start(self) -> Decision:
        """Decides how the run starts in its folder (:mod:`vae.runs.continuation`) and does it: a skipped run
        touches nothing; otherwise rank 0 takes the folder's lock, moves an attempt to rerun aside, and
        records that the run is running.

        Raises:
            FolderIsLive: another process runs in the folder.
            ConfigError: the folder holds a run of other settings, or a failed run kept failed.
        """
        self.config = OmegaConf.to_container(self.cfg, resolve=True)
        failed = HydraConfig.get().sweeper.get("failed", "rerun") if in_a_sweep() else "rerun"
        checkpoint = self.cfg.get("ckpt_path")
        decision = decide(self.folder, self.config, checkpoint, failed, live=self.zero)
        if self.zero and decision.refusal is None and decision.action != SKIP:
            self.lock = FolderLock(self.folder).acquire()  # raises if another process came first
            decision = decide(self.folder, self.config, checkpoint, failed, live=False)  # again, under the lock
        if decision.action == LIVE:
            raise FolderIsLive(decision.refusal)
        if decision.refusal is not None:
            raise ConfigError([decision.refusal])
        if decision.action == KEEP:
            raise ConfigError([f"{self.folder} holds a failed run, kept failed (hydra.sweeper.failed=keep)"])
        if decision.action == SKIP:
            log.info(f"Run {self.cfg.run_name}: {self.folder} already holds it ({decision.state.status}); skipped")
            return decision
        if decision.action == RERUN and self.zero:
            job = HydraConfig.get().job.name if HydraConfig.initialized() else "train"
            moved = move_aside(self.folder, decision.state.status, keep=(".hydra", f"{job}.log"))  # Hydra's, of now
            log.info(f"Run {self.cfg.run_name}: its earlier attempt ({decision.state.status}) was moved to {moved}")
        if decision.action == RESUME:
            self.resumed = load_checkpoint(decision.checkpoint)
            earlier = decision.state.record.get("resumed_from", [])
            at = {"checkpoint": str(decision.checkpoint), "epoch": self.resumed["epoch"]}
            at |= {"step": checkpoint_step(self.resumed), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
            self.history = {"resumed_from": [*earlier, at]}
        if self.zero:  # says what runs here, so that a sweep continued into the folder knows it
            self._write(RUNNING, {})
        return decision

    def callbacks(self) -> list[L.Callback]:
        """What the run adds to the trainer's callbacks: stopping on SIGTERM, and a search's pruning."""
        self.pruning = trial_pruning(self.cfg)
        return [self.sigterm.callback(), *([self.pruning] if self.pruning is not None else [])]

    def watch(self, trainer: L.Trainer, model: L.LightningModule) -> None:
        """The trainer and model of the run, whose checkpoints and metrics its record holds."""
        self.trainer, self.n_params = trainer, sum(p.numel() for p in model.parameters())

    @property
    def pruned(self) -> bool:
        return self.pruning is not None and self.pruning.pruned

    @property
    def best_checkpoint(self) -> str:
        return checkpoints(self.trainer)[0]

    def fit_metrics(self) -> dict[str, float]:
        """The last epoch's validation values, taken after fitting (testing resets them); those of the last
        checkpoint below them, for a run continued after its last epoch, which trains none. Rank 0's only."""
        if not self.zero:
            return {}
        return {**load_checkpoint(checkpoints(self.trainer)[1]).get("validation", {}), **final_metrics(self.trainer)}

    def finish(self, status: str, metrics: dict[str, float]) -> float | None:
        """Records the run's end (``completed`` or ``pruned``) and returns the value a sweeper optimizes.

        Raises:
            MetricNotLogged: ``optimized_metric`` is not among the run's values; it is recorded failed.
        """
        self.sigterm.hold()  # the run is over: a SIGTERM now must not turn its record into another one
        if not self.zero:
            return None  # a sweeper reads rank 0's value (only rank 0 has the evaluation's metrics)
        self.metrics, best = metrics, self.best_checkpoint
        scores = best_scores(best)
        value = self.optimized_value({**metrics, **scores.get("best_metrics", {})})
        where = {"best_checkpoint": best} if status == COMPLETED else {}
        self._write(status, metrics, n_params=self.n_params, **where, **scores)
        if status == COMPLETED:
            shown = {k: round(v, 3) for k, v in metrics.items() if k.startswith("test/")}
            log.info(f"Test metrics (losses in nats per image): {shown}")
            log.info(f"Run folder: {self.folder}\nTensorBoard: tensorboard --logdir {self.folder}")
        else:
            log.info(f"Run {self.cfg.run_name} {status} after epoch {self.pruning.pruned_epoch}: {self.pruning.reason}")
        return value

    def optimized_value(self, metrics: dict[str, float]) -> float | None:
        return optimized_value(self.cfg, metrics)

    def _write(self, status: str, metrics: dict, **details) -> None:
        record = {"run_name": self.cfg.run_name, "status": status, "metrics": dict(sorted(metrics.items()))}
        record |= {**details, **self.history, "wall_time_s": round(time.perf_counter() - self.started, 2)}
        record["config"] = self.config if self.config is not None else _settings(self.cfg)
        write_record(self.folder, record)
        self.owns_record = True

    def _record_failed(self, err: Exception) -> None:
        if not self.zero or isinstance(err, FolderIsLive):
            return
        if not self.owns_record and read_record(self.folder) is not None:
            return  # the record of an earlier run stays as it was
        last, metrics = checkpoints(self.trainer)[1], self.metrics or final_metrics(self.trainer)
        self._write(FAILED, metrics, error=f"{type(err).__name__}: {err}", last_checkpoint=last)
        if self.trainer is not None:  # training had started: say where it can be picked up
            log.error(f"Run {self.cfg.run_name} failed; last good checkpoint: {last or 'none'}")

    def _record_interrupted(self) -> None:
        if not self.zero:
            log.info(f"Process {rank_zero_only.rank} of run {self.cfg.run_name} stopped by SIGTERM")
            return
        if not self.owns_record:
            return  # stopped before it started: the folder holds nothing of it
        last = checkpoints(self.trainer)[1]
        self._write(INTERRUPTED, final_metrics(self.trainer), last_checkpoint=last)
        log.warning(f"Run {self.cfg.run_name} interrupted by SIGTERM; continue it from {last or 'its start'}")


def optimized_value(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """The value a sweeper optimizes: of the best checkpoint, the one tested and evaluated, for val/
    values too (not of the last epoch). A sweeper cannot rank a run without it, so a name the run
    never logged is an error that lists the names it did log, not a silent None.

    Raises:
        MetricNotLogged: ``cfg.optimized_metric`` is not among ``metrics``.
        ValueError: its value is not a finite number.
    """
    name = cfg.get("optimized_metric")
    if name is None:
        return None
    if name not in metrics:
        logged = ", ".join(sorted(k for k in metrics if "/kl_per_dim/" not in k))
        raise MetricNotLogged([f"optimized_metric={name!r}: {cfg.model._target_} does not log it; it logged: {logged}"])
    if not math.isfinite(metrics[name]):
        raise ValueError(f"optimized_metric={name!r} is {metrics[name]}: a sweeper cannot rank the run by it")
    return metrics[name]


def _settings(cfg: DictConfig) -> dict:
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # a value that cannot resolve is what the run failed on: recorded as written
        return OmegaConf.to_container(cfg, resolve=False)
