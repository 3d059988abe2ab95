"""Types of the config groups, checked by Hydra while it composes: before any run folder exists.

Each YAML option in ``conf/`` extends one of these (``defaults: [/schema/<group>@_here_: <name>]``).
A value of the wrong type, or a choice that is not allowed, fails composition with OmegaConf's
message naming the key, the value and the type or choices. Value ranges and rules that tie
several keys together are checked by :mod:`vae.config.validation`.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from omegaconf import MISSING

from vae.nets.activations import ACTIVATIONS
from vae.priors import PRIORS, PSEUDO_INPUT_INITS

Activation = StrEnum("Activation", {name: name for name in ACTIVATIONS})


class Binarize(StrEnum):
    none = "none"
    static = "static"
    dynamic = "dynamic"


class Loader(StrEnum):
    tensor = "tensor"
    torchvision = "torchvision"


class Metrics(StrEnum):
    none = "none"
    cheap = "cheap"
    all = "all"


class SamplePixels(StrEnum):
    mean = "mean"
    sampled = "sampled"


class Verify(StrEnum):
    md5 = "md5"
    header = "header"


@dataclass
class LatentModelSchema:
    """What every model option has: its class, the size of z, beta (ignored where there is no KL) and its monitor."""

    _target_: str = MISSING
    latent_dim: int = MISSING
    beta: float = MISSING
    monitor: str = MISSING  # the val/ value that ranks epochs; read by the checkpoint and early-stopping configs


@dataclass
class ModelSchema(LatentModelSchema):
    encoder: Any = MISSING
    decoder: Any = MISSING
    likelihood: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = None
    compile: bool = False
    channels_last: bool = False
    init_output_bias: bool = False


@dataclass
class VariationalSchema(ModelSchema):
    """What the VAE and the IWAE share: the KL's warm-up and the prior. The prior's choices are plain
    strings (their ``choices`` checked by validation): the model saves them in its checkpoints, which hold
    plain values only, and an enum would not load with ``weights_only=True``."""

    kl_warmup_epochs: float = MISSING
    prior: str = field(default="standard", metadata={"choices": PRIORS})
    pseudo_inputs: int = 500
    pseudo_inputs_init: str = field(default="data", metadata={"choices": PSEUDO_INPUT_INITS})


@dataclass
class VAESchema(VariationalSchema):
    mc_samples: int = MISSING


@dataclass
class IWAESchema(VariationalSchema):
    k: int = MISSING


@dataclass
class HVAESchema(VAESchema):
    z1_dim: int = MISSING
    link_hidden_dims: list[int] = field(default_factory=list)
    link_activation: str = field(default="tanh", metadata={"choices": tuple(ACTIVATIONS)})  # saved in checkpoints


@dataclass
class MLPSchema:
    hidden_dims: list[int] = field(default_factory=list)
    activation: Activation = MISSING
    encoder: Any = MISSING
    decoder: Any = MISSING


@dataclass
class ConvSchema:
    channels: list[int] = field(default_factory=list)
    strides: list[int] = field(default_factory=list)
    kernel_size: int = MISSING
    activation: Activation = MISSING
    encoder: Any = MISSING
    decoder: Any = MISSING


@dataclass
class GaussianSchema:
    _target_: str = MISSING
    variance: float = MISSING
    sigmoid_mean: bool = MISSING


@dataclass
class OptimizerSchema:
    _target_: str = MISSING
    _partial_: bool = True
    lr: float = MISSING
    weight_decay: float = 0.0


@dataclass
class AdamSchema(OptimizerSchema):
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])


@dataclass
class SGDSchema(OptimizerSchema):
    momentum: float = 0.0


@dataclass
class GANSchema(LatentModelSchema):
    generator: Any = MISSING
    discriminator: Any = MISSING
    optimizer: AdamSchema = field(default_factory=AdamSchema)
    label_smoothing: float = 0.0
    instance_noise: float = 0.0
    d_steps: int = 1
    ddp_strategy: str = MISSING  # read by conf/trainer/ddp.yaml


@dataclass
class DatasetSchema:
    """What makes a dataset of 28x28 grey-level IDX files this one (``data.dataset``; docs/datasets.md)."""

    name: str = MISSING  # its folder: <data.root>/<name>/raw/ holds the four IDX files, .gz or extracted
    classes: list[str] = field(default_factory=list)  # the name of label i, in pictures and reports
    mean: float = MISSING  # pixel mean and deviation of the training images in [0, 1], for data.normalize
    std: float = MISSING
    md5: dict[str, str] | None = None  # MD5 of each extracted file, checked under data.verify=md5
    download: str | None = None  # a torchvision dataset class that downloads the files when none are there
    get: str = ""  # how to get the files, said when they are missing
    classifier: str | None = None  # the reference classifier's weights (in vae/metrics/assets/, or a path)


@dataclass
class DataSchema:
    _target_: str = MISSING
    dataset: DatasetSchema = field(default_factory=DatasetSchema)
    root: str | None = None
    cache_dir: str = MISSING
    loader: Loader = MISSING
    batch_size: int = MISSING
    num_workers: int = MISSING
    val_size: int = MISSING
    split_seed: int = MISSING
    seed: int | None = None
    binarize: Binarize = MISSING
    normalize: bool = False
    image_size: int = MISSING
    pin_memory: bool = False
    verify: Verify = MISSING


@dataclass
class NLLSchema:
    k: int = MISSING
    images: int | None = None
    batch: int = MISSING
    max_decodes: int = MISSING


@dataclass
class EvaluationSchema:
    metrics: Metrics = MISSING
    nll: NLLSchema = field(default_factory=NLLSchema)
    samples: int = MISSING
    sample_pixels: SamplePixels = MISSING
    noise_sigmas: list[float] = field(default_factory=list)
    noise_relative: bool = False
    knn_k: int = MISSING
    silhouette_sample: int = MISSING
    seed: int = MISSING


SCHEMAS = {
    "model": {"vae": VAESchema, "iwae": IWAESchema, "hvae": HVAESchema, "ae": ModelSchema, "gan": GANSchema},
    "backbone": {"mlp": MLPSchema, "conv": ConvSchema},
    "likelihood": {"gaussian": GaussianSchema},
    "optimizer": {"adam": AdamSchema, "adamw": AdamSchema, "sgd": SGDSchema},
    "data": {"idx": DataSchema},
    "evaluation": {"default": EvaluationSchema},
}
