"""What the VAE and the auto-encoder share: backbones, likelihood, one step for every stage."""

from collections.abc import Callable, Sequence
from functools import partial

import lightning as L
import torch
from torch import nn

from vae.config.validation import ConfigError
from vae.likelihoods import Bernoulli, Likelihood
from vae.models.compile import compile_modules
from vae.models.guard import NonFiniteGuard
from vae.nets import MLPDecoder, MLPEncoder

ModuleFactory = Callable[..., nn.Module]
# Constructor arguments that are objects, not data: kept out of the saved hyperparameters so
# checkpoints hold plain values only and load with torch.load(weights_only=True). The run
# folder's .hydra/config.yaml says how to build them again.
FACTORIES = ("encoder", "decoder", "likelihood", "optimizer", "scheduler")


def check_pixel_range(x: torch.Tensor, support: tuple[float, float], who: str, fix: str) -> None:
    """Raises a ConfigError naming ``who`` if the first training batch ``x`` lies outside ``support``."""
    low, high = x.min().item(), x.max().item()
    if low < support[0] or high > support[1]:
        problem = f"the first training batch holds values in [{low:.3g}, {high:.3g}]"
        allowed = f"[{support[0]:g}, {support[1]:g}]"
        raise ConfigError([f"{who}: needs pixels in {allowed}, but {problem}; {fix}"])


@torch.no_grad()
def in_batches(module: L.LightningModule, fn: Callable, inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``fn`` over ``inputs`` in batches on the module's device and dtype, results concatenated as float on the CPU."""
    return torch.cat([fn(b.to(module.device, module.dtype)).float().cpu() for b in inputs.split(batch_size)])


class LatentVariableModel(NonFiniteGuard, L.LightningModule):
    """Base LightningModule: an encoder, a decoder and a likelihood, trained by ``loss_terms``.

    Subclasses define ``loss_terms(x)`` (a dict with a differentiable ``loss`` and detached
    parts, in nats per image; each scalar entry is logged as ``<stage>/<name>``) and
    ``encode_mean(x)``. Backbones arrive as factories (Hydra partials) and are completed
    here with the shapes only the model knows.

    Args:
        encoder: ``encoder(in_shape=..., out_dim=...)`` builds the encoder.
        decoder: ``decoder(latent_dim=..., out_shape=...)`` builds the decoder.
        likelihood: observation model (``vae.likelihoods``).
        img_shape: image shape ``(C, H, W)``.
        latent_dim: size of z.
        encoder_out_dim: numbers the encoder emits per image (set by the subclass).
        optimizer: ``optimizer(params=...)`` builds the optimizer (default Adam, lr 1e-3).
        scheduler: optional ``scheduler(optimizer=...)``, stepped each epoch (ReduceLROnPlateau
            on ``val/loss``, after each validation).
        compile: compile the encoder and decoder with torch.compile when the run starts
            (falls back to eager, with a warning, where this machine cannot compile).
        channels_last: keep conv weights and inputs in channels-last memory layout (faster
            convolutions on recent GPUs; no effect on the numbers).
    """

    def __init__(
        self,
        encoder: ModuleFactory | None,
        decoder: ModuleFactory | None,
        likelihood: Likelihood | None,
        img_shape: Sequence[int],
        latent_dim: int,
        encoder_out_dim: int,
        optimizer: Callable[..., torch.optim.Optimizer] | None,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None,
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.compile_backbones, self.channels_last = compile, channels_last
        self._compile_tried = False  # setup runs again for the test stage
        self._targets_checked = False
        self.register_guard()
        self.img_shape = tuple(img_shape)
        self.latent_dim = latent_dim
        self.encoder = (encoder or MLPEncoder)(in_shape=self.img_shape, out_dim=encoder_out_dim)
        self.decoder = (decoder or MLPDecoder)(latent_dim=latent_dim, out_shape=self.img_shape)
        self.likelihood = likelihood or Bernoulli()
        self.optimizer_factory = optimizer or partial(torch.optim.Adam, lr=1e-3)
        self.scheduler_factory = scheduler

    # --- what subclasses provide -------------------------------------------------------------
    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic code of ``x``, ``(B, latent_dim)``: the posterior mean, or the AE code."""
        raise NotImplementedError

    # --- shared by both models ---------------------------------------------------------------
    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """Mean image of p(x | z), ``(B, C, H, W)``."""
        return self.likelihood.mean(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean reconstruction of ``x`` through the code of :meth:`encode_mean`."""
        return self.decode_mean(self.encode_mean(x))

    def encode_all(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """:meth:`encode_mean` of many images: ``(N, D)`` float on the CPU."""
        return in_batches(self, self.encode_mean, x, batch_size)

    def decode_all(self, z: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """:meth:`decode_mean` of many codes: ``(N, C, H, W)`` float on the CPU."""
        return in_batches(self, self.decode_mean, z, batch_size)

    def setup(self, stage: str) -> None:
        """Applies the speed options once the device is known (before Lightning moves the model)."""
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.compile_backbones and not self._compile_tried:
            self._compile_tried = True
            compile_modules([self.encoder, self.decoder], self.trainer.strategy.root_device)

    def _common_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, _ = batch  # labels are kept for plots, never used for training
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if stage == "train" and not self._targets_checked:
            self._check_targets(x)
        terms = self.loss_terms(x)
        if stage == "train":
            self.note_non_finite(terms)
            if not self._training_values_logged_now():
                return terms["loss"]
        # Training values per step (for live curves), val/test as epoch means averaged over
        # processes. No value forces a host sync each step.
        per_step = stage == "train"
        log = partial(self.log, on_step=per_step, on_epoch=not per_step, sync_dist=not per_step, batch_size=len(x))
        for name, value in terms.items():
            if value.ndim == 0:
                log(f"{stage}/{name}", value, prog_bar=stage == "val" and name == "loss")
        if stage == "val" and "kl_per_dim" in terms:
            width = len(str(self.latent_dim - 1))
            for i, kl in enumerate(terms["kl_per_dim"]):
                log(f"val/kl_per_dim/z{i:0{width}d}", kl)
        return terms["loss"]

    def _check_targets(self, x: torch.Tensor) -> None:
        """Refuses data the likelihood cannot model (e.g. normalized pixels under a Bernoulli), once."""
        self._targets_checked = True
        support = getattr(self.likelihood, "support", None)
        if support:
            name = getattr(self.likelihood, "name", type(self.likelihood).__name__)
            fix = "use likelihood=gaussian, or data in that range (no normalization)"
            check_pixel_range(x, support, f"likelihood={name}", fix)

    def _training_values_logged_now(self) -> bool:
        """Whether Lightning writes training values at this step (every ``log_every_n_steps``).

        Each ``self.log`` call costs a fraction of a millisecond, as much as a small model's step,
        so training values are logged only when they reach the logger, as Lightning's own
        monitors (LearningRateMonitor, DeviceStatsMonitor) do.
        """
        connector = getattr(self.trainer, "_logger_connector", None)
        return connector is None or connector.should_update_logs or bool(self.trainer.fast_dev_run)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "test")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        schedule = {"scheduler": scheduler, "interval": "epoch"}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            # it reads val/loss, which exists only after the epochs that validate
            every = self.trainer.check_val_every_n_epoch if self._trainer is not None else 1
            schedule.update(monitor="val/loss", frequency=every or 1)
        return {"optimizer": optimizer, "lr_scheduler": schedule}
