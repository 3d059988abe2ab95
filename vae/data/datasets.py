"""A dataset's description (``data.dataset``): from a data config of ``conf/data/`` or any mapping."""

from collections.abc import Mapping
from pathlib import Path

from omegaconf import OmegaConf

from vae.config.schema import DatasetSchema

DATA_CONFIGS = Path(__file__).resolve().parents[2] / "conf" / "data"


def dataset_spec(dataset: str | Mapping | DatasetSchema | None = None) -> DatasetSchema:
    """``dataset`` as a typed :class:`DatasetSchema`: a ``data.dataset`` node; a data config's ``dataset:``
    node, the config named by its file (``path/to/data.yaml``) or by its name in ``conf/data/``
    (``mnist``, ``fashion_mnist``); or None for MNIST.

    Raises:
        omegaconf.ValidationError: if a field is missing or of the wrong type, naming it.
    """
    if isinstance(dataset, DatasetSchema):
        return dataset
    if dataset is None or isinstance(dataset, str):
        named = Path(dataset or "mnist")
        dataset = OmegaConf.load(named if named.suffix == ".yaml" else DATA_CONFIGS / f"{named}.yaml").dataset
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(DatasetSchema), dataset))
