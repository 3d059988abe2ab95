"""Hydra's grid sweeper, continuing a sweep run again into its folder (see ``continuing``)."""

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from .continuing import ContinuingLauncher


class ContinuingGridSweeper(BasicSweeper):
    """Every combination of the swept values, as Hydra's basic sweeper runs them; jobs whose folders
    already hold them finished are not run again.

    Args:
        max_batch_size: jobs handed to the launcher at once (None: all).
        params: sweep overrides from the config, e.g. ``{model.latent_dim: "2,10"}``.
        failed: ``rerun`` a job whose folder holds a failed run (its files moved aside), or ``keep`` it failed.
    """

    def __init__(self, max_batch_size: int | None = None, params: dict | None = None, failed: str = "rerun") -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.failed = failed

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.launcher = ContinuingLauncher(self.launcher, hydra_context, config, self.failed)

    def sweep(self, arguments: list[str]):
        # every folder is checked before Hydra rewrites the sweep's multirun.yaml, which resume= reads
        self.launcher.hold()
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        batches = self.split_arguments(parser.parse_overrides(self._parse_config() + arguments), None)
        self.launcher.check([(overrides, idx) for idx, overrides in enumerate(batches[0])])
        return super().sweep(arguments)
