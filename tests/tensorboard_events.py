"""Reading a run's TensorBoard event files back, as TensorBoard itself does."""

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
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
