"""Value checks on a composed config, run before anything heavy starts.

Types and choices are checked by Hydra itself while it composes (:mod:`vae.config.schema`);
these are the ranges and the rules that tie several keys together. Every problem is reported,
each naming the key, the value and what is allowed, in one :class:`ConfigError`.
"""

import importlib.util
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf

from vae.cluster.slurm import launched_on_slurm
from vae.config.data_checks import dataset_problems
from vae.nets.activations import ACTIVATIONS
from vae.nets.conv import feature_shape
from vae.priors import PRIORS, PSEUDO_INPUT_INITS
from vae.runs import in_a_sweep

try:  # Lightning's own parser of trainer.precision, so the allowed values never drift from its own
    from lightning.fabric.connector import _convert_precision_to_unified_args as _parse_precision
except ImportError:  # a Lightning without it still refuses a bad precision when the trainer is built
    _parse_precision = None

ABSENT = object()


class ConfigError(ValueError):
    """The configuration asks for something impossible; ``problems`` lists each bad value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))


def _show(value: Any) -> str:
    if isinstance(value, ListConfig | DictConfig):
        value = OmegaConf.to_container(value)
    return repr(value) if isinstance(value, str) else str(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def at_least(low: float, integer: bool = True) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        number = _is_int(value) or (not integer and isinstance(value, float))
        return number and math.isfinite(value) and value >= low

    return check


def above(low: float) -> Callable[[Any], bool]:
    return lambda value: (_is_int(value) or isinstance(value, float)) and math.isfinite(value) and value > low


def each(check: Callable[[Any], bool], non_empty: bool = False) -> Callable[[Any], bool]:
    def check_all(values: Any) -> bool:
        return isinstance(values, list | ListConfig) and all(map(check, values)) and bool(values or not non_empty)

    return check_all


# key, check, what is allowed
RANGES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("model.latent_dim", at_least(1), "a whole number >= 1"),
    ("model.beta", at_least(0, integer=False), "a number >= 0 (0 leaves the KL term out)"),
    ("model.mc_samples", at_least(1), "a whole number >= 1"),
    ("model.k", at_least(1), "a whole number of importance samples >= 1"),
    ("model.kl_warmup_epochs", at_least(0, integer=False), "a number of epochs >= 0 (0 turns warm-up off)"),
    ("model.prior", lambda v: v in PRIORS, f"one of {', '.join(PRIORS)}"),
    ("model.pseudo_inputs", at_least(1), "a whole number of the VampPrior's pseudo-inputs >= 1"),
    ("model.pseudo_inputs_init", lambda v: v in PSEUDO_INPUT_INITS, f"one of {', '.join(PSEUDO_INPUT_INITS)}"),
    ("model.z1_dim", at_least(1), "a whole number >= 1"),
    ("model.link_hidden_dims", each(at_least(1)), "a list of layer sizes, each >= 1 ([] for no hidden layer)"),
    ("model.link_activation", lambda v: v in ACTIVATIONS, f"one of {', '.join(ACTIVATIONS)}"),
    ("model.label_smoothing", lambda v: isinstance(v, int | float) and 0 <= v < 1, "a number in [0, 1)"),
    ("model.instance_noise", at_least(0, integer=False), "a noise level >= 0"),
    ("model.d_steps", at_least(1), "a whole number >= 1"),
    ("backbone.hidden_dims", each(at_least(1)), "a list of layer sizes, each >= 1 ([] for no hidden layer)"),
    ("backbone.channels", each(at_least(1), non_empty=True), "a non-empty list of channel counts, each >= 1"),
    ("backbone.strides", each(at_least(1), non_empty=True), "a non-empty list of strides, each >= 1"),
    ("backbone.kernel_size", at_least(1), "a whole number >= 1"),
    ("likelihood.variance", above(0), "a number > 0"),
    ("data.batch_size", at_least(1), "a whole number >= 1"),
    ("data.num_workers", at_least(0), "a whole number >= 0"),
    ("data.val_size", at_least(1), "a whole number of images >= 1"),
    ("data.image_size", at_least(1), "a side length in pixels >= 1"),
    ("optimizer.lr", above(0), "a learning rate > 0"),
    ("optimizer.betas", lambda v: each(lambda b: 0 <= b < 1)(v) and len(v) == 2, "two numbers in [0, 1)"),
    ("optimizer.weight_decay", at_least(0, integer=False), "a number >= 0"),
    ("optimizer.momentum", at_least(0, integer=False), "a number >= 0"),
    ("trainer.max_epochs", lambda v: _is_int(v) and (v >= 1 or v == -1), "a whole number >= 1, or -1 for no limit"),
    ("trainer.num_nodes", at_least(1), "a whole number of machines >= 1"),
    ("trainer.check_val_every_n_epoch", at_least(1), "a whole number >= 1"),
    ("trainer.log_every_n_steps", at_least(1), "a whole number >= 1"),
    ("callbacks.every_n_epochs", at_least(0), "a whole number >= 0 (0 draws only at the end)"),
    ("callbacks.projector.n_images", at_least(0), "a whole number of validation images >= 0 (0 writes none)"),
    ("callbacks.projector.every_n_epochs", at_least(0), "a whole number >= 0 (0 writes only at the end)"),
    ("evaluation.nll.k", at_least(1), "a number of importance samples >= 1"),
    ("evaluation.nll.images", lambda v: v is None or at_least(1)(v), "null (all) or a number of test images >= 1"),
    ("evaluation.nll.batch", at_least(1), "a whole number >= 1"),
    ("evaluation.nll.max_decodes", at_least(1), "a number of images per decoder pass >= 1"),
    ("evaluation.samples", at_least(2), "a number of samples >= 2 (a Fréchet distance needs two)"),
    ("evaluation.noise_sigmas", each(at_least(0, integer=False)), "a list of noise levels, each >= 0"),
    ("evaluation.knn_k", at_least(1), "a whole number >= 1"),
    ("evaluation.silhouette_sample", at_least(2), "a whole number >= 2"),
    ("seed", lambda v: v is None or (_is_int(v) and 0 <= v < 2**32), "null or a whole number in [0, 2**32)"),
]


def validate(cfg: DictConfig) -> None:
    """Raises :class:`ConfigError` listing every bad value of ``cfg``; returns None if all are good."""
    problems = []
    for key, check, allowed in RANGES:
        value = OmegaConf.select(cfg, key, default=ABSENT)
        if value is not ABSENT and not check(value):
            problems.append(f"{key}={_show(value)}: must be {allowed}")
    model = cfg.get("model")
    if model is not None and "optimizer" in model and not OmegaConf.is_interpolation(model, "optimizer"):
        lr = OmegaConf.select(model, "optimizer.lr", default=ABSENT)  # a GAN's own optimizer, not the group's
        if lr is not ABSENT and not above(0)(lr):
            problems.append(f"model.optimizer.lr={_show(lr)}: must be a learning rate > 0")
    problems += _conv_problems(cfg) + _likelihood_problems(cfg) + _device_problems(cfg) + _precision_problems(cfg)
    problems += _monitor_problems(cfg) + _logger_problems(cfg) + dataset_problems(cfg)
    if "trainer" in cfg:  # training's ckpt_path: evaluate.py's also takes folders, and checks them itself
        problems += _checkpoint_problems(cfg)
    if problems:
        raise ConfigError(problems)


def _conv_problems(cfg: DictConfig) -> list[str]:
    channels, strides = cfg.get("backbone", {}).get("channels"), cfg.get("backbone", {}).get("strides")
    kernel, size = cfg.get("backbone", {}).get("kernel_size"), OmegaConf.select(cfg, "data.image_size")
    if not (each(at_least(1), True)(channels) and each(at_least(1), True)(strides)):
        return []  # already reported
    if len(channels) != len(strides):
        layers = f"{len(channels)} for backbone.channels={_show(channels)}"
        return [f"backbone.strides={_show(strides)}: must have one stride per conv layer, {layers}"]
    if not (at_least(1)(kernel) and at_least(1)(size)):
        return []
    try:
        feature_shape((1, size, size), list(channels), kernel, list(strides))
    except ValueError:
        image = f"a {size}x{size} image (data.image_size={size})"
        fix = "use fewer or smaller strides, or larger images"
        return [
            f"backbone.strides={_show(strides)} with backbone.kernel_size={kernel}: {image} shrinks to nothing; {fix}"
        ]
    return []


def _likelihood_problems(cfg: DictConfig) -> list[str]:
    """Models whose pixels live in [0, 1] (a GAN, means squashed to [0, 1]), refused on normalized pixels."""
    if not OmegaConf.select(cfg, "data.normalize", default=False):
        return []
    if str(OmegaConf.select(cfg, "model._target_", default="")).endswith("GAN"):  # it has no likelihood
        why = "the generator's pixels lie in [0, 1] and normalized real ones do not, so the discriminator"
        why += " tells them apart by their range alone"
        return [f"data.normalize=True with model=gan: {why}; use data.normalize=false"]
    if str(OmegaConf.select(cfg, "likelihood._target_", default="")).endswith("Bernoulli"):
        why = "the Bernoulli likelihood needs pixels in [0, 1] and normalizing moves them outside"
        return [f"data.normalize=True: {why}; use likelihood=gaussian, or data.normalize=false"]
    if OmegaConf.select(cfg, "likelihood.sigmoid_mean", default=False):
        why = "the sigmoid keeps the Gaussian's mean in [0, 1], but normalized pixels leave it"
        why += " (background below 0, ink above 1)"
        fix = "use likelihood.sigmoid_mean=false, or data.normalize=false"
        return [f"likelihood.sigmoid_mean=True with data.normalize=True: {why}; {fix}"]
    return []


def _monitor_problems(cfg: DictConfig) -> list[str]:
    """model.monitor against what the model class logs where lower is better (its ``monitors``)."""
    monitor, target = OmegaConf.select(cfg, "model.monitor"), OmegaConf.select(cfg, "model._target_")
    if monitor is None or target is None:
        return []
    allowed = getattr(hydra.utils.get_class(target), "monitors", None)
    if not allowed or monitor in allowed:
        return []
    why = "the best checkpoint, early stopping and the plateau scheduler keep its lowest value"
    return [f"model.monitor={_show(monitor)}: must be one of {list(allowed)} for {target}; {why}"]


def _device_problems(cfg: DictConfig) -> list[str]:
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto"))
    devices = OmegaConf.select(cfg, "trainer.devices", default="auto")
    if devices == "auto" or (isinstance(devices, ListConfig) and all(map(at_least(0), devices)) and devices):
        count = len(devices) if isinstance(devices, ListConfig) else None
    elif _is_int(devices) and (devices >= 1 or devices == -1):
        count = devices if devices >= 1 else None
    else:
        allowed = "a whole number >= 1, -1 (all), 'auto', or a list of device indices"
        return [f"trainer.devices={_show(devices)}: must be {allowed}"]
    if accelerator in ("gpu", "cuda"):
        visible = torch.cuda.device_count()
        if visible == 0:
            fix = "use trainer=cpu, or trainer.accelerator=auto"
            return [f"trainer.accelerator={accelerator}: no GPU is visible to PyTorch here; {fix}"]
        if count is not None and count > visible:
            return [f"trainer.devices={_show(devices)}: only {visible} GPU(s) visible here"]
    nodes, val_size = OmegaConf.select(cfg, "trainer.num_nodes", default=1), OmegaConf.select(cfg, "data.val_size")
    if count is None or not at_least(1)(nodes):
        return []
    processes = f"{count * nodes} processes (trainer.devices={_show(devices)} x trainer.num_nodes={nodes})"
    if at_least(1)(val_size) and val_size < count * nodes:
        # validation shards are not padded with repeated images, so each process needs one of its own
        return [f"data.val_size={val_size}: must be at least the number of processes, {processes}"]
    needed, strategy = OmegaConf.select(cfg, "model.ddp_strategy"), OmegaConf.select(cfg, "trainer.strategy")
    if needed and count * nodes > 1 and strategy != needed:
        # Lightning would pick plain DDP, which refuses the GAN's alternating backward passes
        fix = f"use trainer=ddp, which takes it, or trainer.strategy={needed}"
        return [f"trainer.strategy={_show(strategy or 'auto')}: {processes} of this model need {needed}; {fix}"]
    return _sweep_problems(count * nodes, processes)


def _sweep_problems(count: int, processes: str) -> list[str]:
    """DDP inside a multirun of a local launcher: Lightning starts each extra process by running the
    command line again, which would start the whole sweep again in it. SLURM starts the processes itself."""
    if count <= 1 or not in_a_sweep():
        return []
    if launched_on_slurm(HydraConfig.get()):
        return []
    launcher = str(OmegaConf.select(HydraConfig.get(), "launcher._target_", default=""))
    fix = "run DDP jobs one at a time (python train.py trainer=ddp ..., without -m), or use hydra/launcher=slurm"
    return [f"{processes} in a multirun on this machine ({launcher.rsplit('.', 1)[-1]}): not supported; {fix}"]


def _precision_problems(cfg: DictConfig) -> list[str]:
    precision = OmegaConf.select(cfg, "trainer.precision", default=None)
    if precision is None or _parse_precision is None:
        return []
    try:
        _parse_precision(precision)
    except ValueError as err:
        allowed = str(err).rsplit(": ", 1)[-1]  # Lightning's list of allowed values
        return [f"trainer.precision={_show(precision)}: must be one of the values Lightning accepts, {allowed}"]
    return []


def _checkpoint_problems(cfg: DictConfig) -> list[str]:
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path in (None, "last") or Path(os.path.expanduser(str(ckpt_path))).is_file():
        return []
    allowed = "a checkpoint file, or 'last' for the run folder's checkpoints/last.ckpt"
    return [f"ckpt_path={_show(ckpt_path)}: no such file; give {allowed}"]


def _logger_problems(cfg: DictConfig) -> list[str]:
    """A logger whose package is an optional extra that is not installed."""
    loggers = cfg.get("logger") or {}
    targets = [str(entry.get("_target_", "")) for entry in loggers.values() if isinstance(entry, DictConfig)]
    extras = {
        "MLFlowLogger": ("mlflow", "MLflow (logger=mlflow or many)"),
        "WandbLogger": ("wandb", "W&B (logger=wandb)"),
    }
    return [
        f'logger: {name} needs its extra: pip install -e ".[{package}]"'
        for logger, (package, name) in extras.items()
        if any(target.endswith(logger) for target in targets) and importlib.util.find_spec(package) is None
    ]
