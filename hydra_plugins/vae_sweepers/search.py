"""A hyperparameter search on a current Optuna (ask and tell), whose study survives the sweep being killed."""

import json
import logging
from pathlib import Path

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from vae.sweep.pruning import trial_of

from .continuing import ContinuingLauncher, consecutive

log = logging.getLogger(__name__)
DONE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class OptunaSearch(Sweeper):
    """Optuna's sampler proposes each trial's settings; each trial is one job (one run folder) of the sweep.

    The study lives in ``storage`` (by default a SQLite file in the sweep folder), so the same command
    run again into the same folder continues it: trials finished are kept, a trial left running by a
    killed search is launched again with its settings (its job resumes from its last checkpoint) and
    the search stops when the study holds ``n_trials`` finished trials, not ``n_trials`` more. With a
    ``pruner``, every trial reports its validation value each epoch (``vae.sweep.pruning``) and stops
    when the pruner finds it trailing; it is recorded as pruned.

    Args:
        study_name, storage, direction: the Optuna study (``storage`` a database URL).
        n_trials: trials the study should hold in the end, finished, pruned and failed ones counted.
        n_jobs: trials given to the launcher at once (more than one needs a parallel launcher).
        sampler, pruner: an Optuna sampler and pruner (Hydra builds them from their ``_target_`` configs;
            the trials build the pruner again from the same config); pruner null: no pruning.
        params: the search space, ``key: choice(...) | interval(...) | range(...)``, ``tag(log, ...)``
            for a log scale, ``tag(int, interval(...))`` for integers.
        params_by_choice: more of the space by the option a config group has, e.g. the width key of the
            backbone searched: ``{backbone: {mlp: {backbone.hidden_dims.0: ...}, conv: {...}}}``.
        failed: ``rerun`` or ``keep`` a job whose folder holds a failed run (see ``ContinuingLauncher``).
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
        fixed, space = self.search_space(arguments)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        storage = optuna.storages.get_storage(self.storage)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            sampler=self.sampler,
            pruner=self.pruner or optuna.pruners.NopPruner(),
            direction=self.direction,
            load_if_exists=True,
        )
        # trials left running belong to a search that was killed: this one launches them again
        left = [trial_of(study, storage, t.number) for t in study.get_trials(states=(TrialState.RUNNING,))]
        done = len(study.get_trials(states=DONE))
        # the folders of the study's trials must hold its settings before the sweep is recorded (resume= reads it)
        self.launcher.check([(trial_overrides(fixed, t), t.number) for t in study.trials])
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        log.info(f"Study {self.study_name} in {self.storage}: {done} trials finished, {len(left)} to continue")
        while done < self.n_trials:
            batch = left[: self.n_jobs]
            left = left[len(batch) :]
            while len(batch) < min(self.n_jobs, self.n_trials - done):
                batch.append(study.ask(space))
            self._run(study, batch, fixed)
            done += len(batch)
        self._write_results(study, sweep_dir)

    def search_space(self, arguments: list[str]) -> tuple[list[str], dict]:
        """The command line's plain overrides, and the distributions of the search space: ``params``,
        the ``params_by_choice`` of the options this config has, and the command line's own sweeps."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(list(arguments))
        fixed = [o.input_line for o in overrides if not o.is_sweep_override()]
        config = self.hydra_context.config_loader.load_sweep_config(self.config, fixed)
        params = dict(self.params)
        for group, options in self.params_by_choice.items():
            params.update(options.get(config.hydra.runtime.choices.get(group), {}))
        # the command line's sweeps (e.g. model.beta=interval(1,4)) join the space and take precedence
        overrides = parser.parse_overrides([f"{k}={v}" for k, v in params.items()]) + overrides
        space = {o.get_key_element(): distribution(o) for o in overrides if o.is_sweep_override()}
        _check_keys(config, space)
        return fixed, space

    def _run(self, study: optuna.Study, trials: list[optuna.trial.Trial], fixed: list[str]) -> None:
        """Launches the trials (consecutive numbers together) and tells the study how each ended."""
        by_number = {trial.number: trial for trial in trials}
        for block in consecutive(sorted(by_number)):
            jobs = [trial_overrides(fixed, by_number[number]) for number in block]
            for number, ret in zip(block, self.launcher.launch(jobs, initial_job_idx=block[0]), strict=True):
                self._tell(study, by_number[number], ret)

    def _tell(self, study: optuna.Study, trial: optuna.trial.Trial, ret) -> None:
        folder = self.launcher.folders[trial.number]
        status = _status(folder)
        try:
            value = ret.return_value
        except Exception as err:  # the job failed; the sweep goes on with the next trials
            log.warning(f"Trial {trial.number} ({folder}) failed: {type(err).__name__}: {err}")
            study.tell(trial, state=TrialState.FAIL)
            return
        if status == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        elif value is None or value != value:  # no value, or NaN
            log.warning(f"Trial {trial.number} ({folder}) returned {value}; recorded as failed")
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, float(value))
        log.info(f"Trial {trial.number}: {status or 'finished'}, value {value}, settings {trial.params}")

    def _write_results(self, study: optuna.Study, sweep_dir: Path) -> None:
        finished = study.get_trials(states=(TrialState.COMPLETE,))
        counts = {state.name.lower(): len(study.get_trials(states=(state,))) for state in DONE}
        results = {"name": "optuna", "study_name": self.study_name, "storage": self.storage, "trials": counts}
        if finished:
            results |= {"best_params": study.best_trial.params, "best_value": study.best_value}
            results["best_trial"] = study.best_trial.number
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
        log.info(f"Best of {counts}: {results.get('best_params')} -> {results.get('best_value')}")


def _check_keys(config: DictConfig, space: dict) -> None:
    """Refuses a search space key the composed config lacks (e.g. an MLP width with backbone=conv)."""
    missing = [key for key in space if OmegaConf.select(config, key, default="<missing>") == "<missing>"]
    if missing:
        choices = ", ".join(f"{k}={v}" for k, v in config.hydra.runtime.choices.items() if "/" not in k)
        raise HydraException(
            f"hydra.sweeper.params: {', '.join(missing)} is not a key of the config this search runs ({choices}); "
            "search the keys it has (hydra.sweeper.params_by_choice gives each backbone its own)"
        )


def distribution(override: Override) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution of a sweep override: choice, interval or range, with ``log`` and ``int`` tags."""
    sweep = override.value()
    tags = getattr(sweep, "tags", set())
    if isinstance(sweep, ChoiceSweep):
        return optuna.distributions.CategoricalDistribution(list(sweep.list))
    if isinstance(sweep, IntervalSweep):
        if "int" in tags:
            return optuna.distributions.IntDistribution(int(sweep.start), int(sweep.end), log="log" in tags)
        return optuna.distributions.FloatDistribution(sweep.start, sweep.end, log="log" in tags)
    if isinstance(sweep, RangeSweep):
        if all(float(v).is_integer() for v in (sweep.start, sweep.stop, sweep.step)):
            return optuna.distributions.IntDistribution(int(sweep.start), int(sweep.stop) - 1, step=int(sweep.step))
        return optuna.distributions.FloatDistribution(sweep.start, sweep.stop, step=sweep.step)
    raise HydraException(f"{override.input_line}: the search supports choice, interval and range")


def trial_overrides(fixed: list[str], trial: optuna.trial.BaseTrial) -> list[str]:
    return [*fixed, *(f"{key}={value}" for key, value in trial.params.items())]


def _status(folder: Path) -> str | None:
    path = folder / "metrics.json"
    return json.loads(path.read_text()).get("status") if path.is_file() else None
