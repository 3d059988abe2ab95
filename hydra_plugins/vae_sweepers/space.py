"""A search's space and settings: Hydra's sweep overrides as Optuna distributions, checked before a trial runs."""

import math

import optuna
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from omegaconf import DictConfig, OmegaConf

DIRECTIONS = ("minimize", "maximize")


def distribution(override: Override) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution of a sweep override: choice, interval or range, with ``log`` and ``int`` tags.

    ``range(start, stop, step)`` holds the values Hydra's grid would run, its end excluded as in Python's
    ``range``, whole numbers or not.

    Raises:
        ValueError: the override holds no value to search (an empty range, an interval whose ends are
            swapped, Optuna's own refusals such as a log scale reaching 0), or is not a choice, interval
            or range.
    """
    sweep = override.value()
    tags = getattr(sweep, "tags", set())
    if isinstance(sweep, ChoiceSweep):
        return optuna.distributions.CategoricalDistribution(list(sweep.list))
    if isinstance(sweep, IntervalSweep):
        if not sweep.start < sweep.end:
            raise ValueError(f"{override.input_line}: an interval's start must be below its end")
        if "int" in tags:
            return optuna.distributions.IntDistribution(int(sweep.start), int(sweep.end), log="log" in tags)
        return optuna.distributions.FloatDistribution(sweep.start, sweep.end, log="log" in tags)
    if isinstance(sweep, RangeSweep):
        values = list(sweep.range())  # as Hydra's grid runs it: the end excluded
        if not values:
            raise ValueError(f"{override.input_line}: the range holds no value")
        low, high, step = min(values), max(values), abs(sweep.step)
        if all(isinstance(v, int) for v in (sweep.start, sweep.stop, sweep.step)):
            return optuna.distributions.IntDistribution(low, high, step=step)
        return optuna.distributions.FloatDistribution(low, _round(high, step), step=step)
    raise ValueError(f"{override.input_line}: the search supports choice, interval and range")


def _round(value: float, step: float) -> float:
    """``value`` without the float noise of adding ``step`` (0.30000000000000004 for 0.1 + 0.2)."""
    digits = max(0, -math.floor(math.log10(step))) + 6
    return round(value, digits)


def settings_problems(n_trials, n_jobs, direction, optimized_metric, searched: int) -> list[str]:
    """Every bad search setting, each naming its key, its value and what is allowed (``searched``: how many
    keys the space has, good or bad)."""
    problems = []
    for key, value in (("n_trials", n_trials), ("n_jobs", n_jobs)):
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            problems.append(f"hydra.sweeper.{key}={value!r}: must be a whole number >= 1")
    if direction not in DIRECTIONS:
        problems.append(f"hydra.sweeper.direction={direction!r}: must be one of {', '.join(DIRECTIONS)}")
    if not optimized_metric:
        problems.append("optimized_metric=null: a search needs the logged value it optimizes, e.g. val/elbo")
    if not searched:
        problems.append(
            "hydra.sweeper.params: the search space is empty; give keys to search, e.g. "
            "hydra.sweeper.params.model.beta='interval(0.5, 2)'"
        )
    return problems


def missing_keys(config: DictConfig, space: dict) -> list[str]:
    """Search space keys the composed config lacks (e.g. an MLP width with backbone=conv), each with the fix."""
    missing = [key for key in space if OmegaConf.select(config, key, default="<missing>") == "<missing>"]
    if not missing:
        return []
    choices = ", ".join(f"{k}={v}" for k, v in config.hydra.runtime.choices.items() if "/" not in k)
    return [
        f"hydra.sweeper.params: {', '.join(missing)} is not a key of the config this search runs ({choices}); "
        "search the keys it has (hydra.sweeper.params_by_choice gives each backbone its own)"
    ]
