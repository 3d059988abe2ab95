"""Config schemas (types, checked while Hydra composes) and value validation (before a run starts)."""

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from vae.config.schema import SCHEMAS
from vae.config.validation import ConfigError, validate


def register_schemas() -> None:
    """Stores each schema as ``schema/<group>/<name>``, where the YAML options of ``conf/`` find them."""
    store = ConfigStore.instance()
    for group, options in SCHEMAS.items():
        for name, node in options.items():
            store.store(group=f"schema/{group}", name=name, node=node)


def compact(number: float) -> str:
    """A number as short as it reads: 4.0 -> '4', 0.5 -> '0.5' (for run names such as vae-mlp-z10-b4)."""
    return f"{number:g}"


register_schemas()
OmegaConf.register_new_resolver("compact", compact, replace=True)

__all__ = ["ConfigError", "register_schemas", "validate"]
