"""A hyperparameter search on a current Optuna (ask and tell), whose study survives the sweep being killed."""

import logging
import sys
from pathlib import Path

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from vae.cluster.slurm import launched_on_slurm
from vae.runs.pruning import open_storage, storage_url, trial_of
from vae.runs.record import PRUNED, read_record, status_of
from vae.runs.run import MetricNotLogged

from .continuing import ContinuingLauncher, consecutive
from .space import distribution, missing_keys, settings_problems
from .study import counted, keep_sampler, restore_sampler, retry_failed

log = logging.getLogger(__name__)
DONE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class OptunaSearch(Sweeper):
    """Optuna's sampler proposes each trial's settings; each trial is one job (one run folder) of the sweep.

    The study lives in ``storage`` (by default a SQLite file in the sweep folder), so the same command
    run again into the same folder continues it: trials finished are kept, a trial left running by a
    killed search is launched again with its settings (its job resumes from its last checkpoint), failed
    trials are run again (``failed=rerun``, as new trials with their settings), and the search stops when
    the study holds ``n_trials`` finished trials, not ``n_trials`` more. The sampler is kept in the study
    after every proposal (``study.keep_sampler``), so a continued search proposes the trials the unbroken
    one would have. With a ``pruner``, every trial reports its validation value each epoch
    (``vae.runs.pruning``) and stops when the pruner finds it trailing; it is recorded as pruned.

    The search ends with an error when no trial completed, and at once when a trial did not log
    ``optimized_metric``: every later trial would not either.

    Args:
        study_name, storage, direction: the Optuna study (``storage`` a database URL).
        n_trials: trials the study should hold in the end, finished, pruned and failed ones counted (a
            failed trial run again counts once). Trials a killed search left running are finished even
            when the study then holds more.
        n_jobs: trials given to the launcher at once (more than one needs a parallel launcher).
        sampler, pruner: an Optuna sampler and pruner (Hydra builds them from their ``_target_`` configs;
            the trials build the pruner again from the same config); pruner null: no pruning.
        params: the search space, ``key: choice(...) | interval(...) | range(...)``, ``tag(log, ...)``
            for a log scale, ``tag(int, interval(...))`` for integers.
        params_by_choice: more of the space by the option a config group has, e.g. the width key of the
            backbone searched: ``{backbone: {mlp: {backbone.hidden_dims.0: ...}, conv: {...}}}``.
        failed: ``rerun`` or ``keep`` a failed trial (see ``ContinuingLauncher``).
    """

    def __init__(
        self,
        study_name: str,
        storage: str,
        direction: str,
        n_trials: int,
        n_jobs: int,
        sampler: optuna.samplers.BaseSampler | None,
        pruner: optuna.pruners.BasePruner | None,
        params: DictConfig | None,
        params_by_choice: DictConfig | None = None,
        failed: str = "rerun",
    ) -> None:
        self.study_name, self.storage, self.direction = study_name, storage, direction
        self.n_trials, self.n_jobs = n_trials, n_jobs
        self.sampler, self.pruner, self.failed = sampler, pruner, failed
        self.params, self.params_by_choice = params or {}, params_by_choice or {}

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.launcher = ContinuingLauncher(launcher, hydra_context, config, self.failed)

    def sweep(self, arguments: list[str]) -> None:
        fixed, space = self.search_space(arguments)  # exits with every bad setting, before anything is written
        self.launcher.hold()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        self.storage = storage_url(self.storage, sweep_dir, launched_on_slurm(self.config.hydra))
        storage = open_storage(self.storage)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            sampler=self.sampler,
            pruner=self.pruner or optuna.pruners.NopPruner(),
            direction=self.direction,
            load_if_exists=True,
        )
        restore_sampler(study, storage)
        # trials left running belong to a search that was killed: this one launches them again
        left = [trial_of(study, storage, t.number) for t in study.get_trials(states=(TrialState.RUNNING,))]
        # the folders of the study's trials must hold its settings before the sweep is recorded (resume= reads it)
        self.launcher.check([(trial_overrides(fixed, t), t.number) for t in study.trials if t.params])
        retried = retry_failed(study) if self.failed == "rerun" else []
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        done = counted(study)
        log.info(
            f"Study {self.study_name} in {self.storage}: {done} trials finished, {len(left)} to continue"
            + (f", failed trials {retried} to run again" if retried else "")
        )
        stop = None
        while (left or done < self.n_trials) and stop is None:
            batch, left = left[: self.n_jobs], left[self.n_jobs :]
            while len(batch) < self.n_jobs and done + len(batch) + len(left) < self.n_trials:
                batch.append(study.ask(space))
                keep_sampler(study, storage)
            stop = self._run(study, batch, fixed)
            done = counted(study)
        self._write_results(study, sweep_dir)
        if stop is not None:
            sys.exit(f"The search stopped: {stop}")
        if not study.get_trials(states=(TrialState.COMPLETE,)):
            states = {s.name.lower(): len(study.get_trials(states=(s,))) for s in DONE}
            sys.exit(f"No trial of the search completed ({states}); the run folders' metrics.json say why")

    def search_space(self, arguments: list[str]) -> tuple[list[str], dict]:
        """The command line's plain overrides, and the distributions of the search space: ``params``,
        the ``params_by_choice`` of the options this config has, and the command line's own sweeps.
        Exits with a message naming every bad setting of the search."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(list(arguments))
        fixed = [o.input_line for o in overrides if not o.is_sweep_override()]
        config = self.hydra_context.config_loader.load_sweep_config(self.config, fixed)
        params = dict(self.params)
        for group, options in self.params_by_choice.items():
            params.update(options.get(config.hydra.runtime.choices.get(group), {}))
        # the command line's sweeps (e.g. model.beta=interval(1,4)) join the space and take precedence
        overrides = parser.parse_overrides([f"{k}={v}" for k, v in params.items()]) + overrides
        space, problems, sweeps = {}, [], [o for o in overrides if o.is_sweep_override()]
        for override in sweeps:
            try:
                space[override.get_key_element()] = distribution(override)
            except ValueError as err:  # not a class of this package: Hydra's plugin scan runs modules again
                problems.append(str(err))
        metric = config.get("optimized_metric")
        problems += settings_problems(self.n_trials, self.n_jobs, self.direction, metric, len(sweeps))
        problems += missing_keys(config, space)
        if problems:
            sys.exit("invalid search settings, so nothing was run:\n" + "\n".join(f"  {p}" for p in problems))
        return fixed, space

    def _run(self, study: optuna.Study, trials: list[optuna.trial.Trial], fixed: list[str]) -> Exception | None:
        """Launches the trials (consecutive numbers together) and tells the study how each ended; returns the
        error that ends the search (a trial that did not log the optimized metric), if any."""
        by_number, stop = {trial.number: trial for trial in trials}, None
        for block in consecutive(sorted(by_number)):
            jobs = [trial_overrides(fixed, by_number[number]) for number in block]
            for number, ret in zip(block, self.launcher.launch(jobs, initial_job_idx=block[0]), strict=True):
                error = self._tell(study, by_number[number], ret)
                stop = stop or (error if isinstance(error, MetricNotLogged) else None)
        return stop

    def _tell(self, study: optuna.Study, trial: optuna.trial.Trial, ret) -> Exception | None:
        """Tells the study how the trial's job ended, as its run folder records it; returns its error."""
        folder = self.launcher.folders[trial.number]
        try:
            value = ret.return_value
        except Exception as err:  # the job failed, and recorded it; the search goes on with the next trials
            log.warning(f"Trial {trial.number} ({folder}) failed: {type(err).__name__}: {err}")
            study.tell(trial, state=TrialState.FAIL)
            return err
        status = status_of(read_record(folder))
        if status == PRUNED:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, float(value))
        log.info(f"Trial {trial.number}: {status}, value {value}, settings {trial.params}")
        return None

    def _write_results(self, study: optuna.Study, sweep_dir: Path) -> None:
        finished = study.get_trials(states=(TrialState.COMPLETE,))
        counts = {state.name.lower(): len(study.get_trials(states=(state,))) for state in DONE}
        results = {"name": "optuna", "study_name": self.study_name, "storage": self.storage, "trials": counts}
        if finished:
            results |= {"best_params": study.best_trial.params, "best_value": study.best_value}
            results["best_trial"] = study.best_trial.number
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
        log.info(f"Best of {counts}: {results.get('best_params')} -> {results.get('best_value')}")


def trial_overrides(fixed: list[str], trial: optuna.trial.BaseTrial) -> list[str]:
    return [*fixed, *(f"{key}={value}" for key, value in trial.params.items())]
