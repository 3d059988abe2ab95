"""Reading a run's TensorBoard event files back, as TensorBoard itself does."""

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import backend_context
from tensorboard.plugins.hparams import metadata as hparams_metadata


def load_events(run_dir: Path) -> EventAccumulator:
    """Every scalar, image, histogram and plugin record of the event files in ``run_dir``."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "histograms": 0, "tensors": 0})
    return events.Reload()


def hparams_entry(events: EventAccumulator) -> tuple[dict, list[str]]:
    """The run's hyperparameters and the metric names declared for the HPARAMS table."""
    content = events.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    experiment = hparams_metadata.parse_experiment_plugin_data(content[hparams_metadata.EXPERIMENT_TAG])
    start = hparams_metadata.parse_session_start_info_plugin_data(content[hparams_metadata.SESSION_START_INFO_TAG])
    params = {}
    for name, value in start.hparams.items():
        kind = value.WhichOneof("kind")
        params[name] = getattr(value, kind)
    return params, [info.name.tag for info in experiment.metric_infos]


def visible_hparams(events: EventAccumulator) -> list[str]:
    """The settings TensorBoard's HPARAMS table shows when it opens on this run's experiment: the
    backend sorts them (``_sort_and_reduce_to_hparams_limit``), the page keeps that order, puts those
    marked as differing first and shows the first five."""
    content = events.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    experiment = hparams_metadata.parse_experiment_plugin_data(content[hparams_metadata.EXPERIMENT_TAG])
    backend_context._sort_and_reduce_to_hparams_limit(experiment)
    infos = sorted(experiment.hparam_infos, key=lambda info: not info.differs)  # stable, as the page's sort
    return [info.name for info in infos[:5]]
