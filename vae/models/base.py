"""What the VAE and the auto-encoder share: backbones, likelihood, one step for every stage."""

from collections.abc import Callable, Sequence
from functools import partial

import lightning as L
import torch
from torch import nn
from torchmetrics import Metric

from vae.likelihoods import Bernoulli, Likelihood
from vae.models.compile import compile_modules
from vae.nets import MLPDecoder, MLPEncoder
from vae.priors import StandardNormalPrior

ModuleFactory = Callable[..., nn.Module]
# Constructor arguments that are objects, not data: kept out of the saved hyperparameters so
# checkpoints hold plain values only and load with torch.load(weights_only=True). The run
# folder's .hydra/config.yaml says how to build them again.
FACTORIES = ("encoder", "decoder", "likelihood", "optimizer", "scheduler")


@torch.no_grad()
def in_batches(module: L.LightningModule, fn: Callable, inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``fn`` over ``inputs`` in batches on the module's device and dtype, results concatenated as float on the CPU."""
    return torch.cat([fn(b.to(module.device, module.dtype)).float().cpu() for b in inputs.split(batch_size)])


class ImageMean(Metric):
    """The mean over images of a value computed per batch: sum of value × images, over images.

    torchmetrics adds both sums over processes before dividing, so under DDP a value logged from it
    is the mean over all the images, however unevenly the processes share them. (MeanMetric's
    weights are ignored under ``nan_strategy="disable"``, and its NaN check costs a host sync per
    update otherwise.)
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        # float64 and int64 whatever the model's dtype: Lightning casts a bf16-true or 16-true model's
        # floating states with it, and a half-precision sum of 5,000 images' losses would round or overflow
        self.add_state("total", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("images", default=torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, value: torch.Tensor, images: int) -> None:
        self.total = self.total.double() + value.detach().double() * images
        self.images += images

    def compute(self) -> torch.Tensor:
        return (self.total.double() / self.images).float()


class LatentVariableModel(StandardNormalPrior, L.LightningModule):
    """Base LightningModule: an encoder, a decoder and a likelihood, trained by ``loss_terms``.

    Subclasses define ``loss_terms(x)`` (a dict with a differentiable ``loss`` and detached
    parts, in nats per image; the parts named in ``scalar_terms`` are logged as ``<stage>/<name>``,
    and ``kl_per_dim``, where there is one, as ``val/kl_per_dim/z<d>``) and ``encode_mean(x)``.
    Backbones arrive as factories (Hydra partials) and are completed here with the shapes only the
    model knows. What watches training (NaN guard, pixel check, when to log) is the callback
    ``vae.callbacks.TrainingChecks``; it reads ``watched_terms``, ``divergence_hint`` and
    ``pixel_range()`` here.

    The options every model shares are declared here only; the subclasses take their own and pass the
    rest on as keywords.

    Args:
        encoder_out_dim: numbers the encoder emits per image (set by the subclass).
        encoder: ``encoder(in_shape=..., out_dim=...)`` builds the encoder (default: the MLP's).
        decoder: ``decoder(latent_dim=..., out_shape=...)`` builds the decoder (default: the MLP's).
        likelihood: observation model (``vae.likelihoods``; default Bernoulli).
        img_shape: image shape ``(C, H, W)``.
        latent_dim: size of z.
        optimizer: ``optimizer(params=...)`` builds the optimizer (default Adam, lr 1e-3).
        scheduler: optional ``scheduler(optimizer=...)``, stepped each epoch (ReduceLROnPlateau
            on ``monitor``, after each validation).
        monitor: the validation value that ranks epochs (best checkpoint, early stopping, plateau
            scheduler); the model config declares it and those configs read it from there.
        compile: compile the encoder and decoder with torch.compile when the run starts
            (falls back to eager, with a warning, where this machine cannot compile).
        channels_last: keep conv weights and inputs in channels-last memory layout (faster
            convolutions on recent GPUs, and on a CPU: benchmarks/channels_last.py; no effect on the numbers).
        init_output_bias: when training starts from scratch, set the decoder's output bias so that its
            mean image is the training images' mean (the data module's ``mean_image``): per pixel for
            an MLP, per channel for a conv. A run resumed from a checkpoint keeps the checkpoint's.
        decoder_in_dim: the size of the code the decoder takes, where it is not z's (set by the subclass:
            a hierarchical model decodes its lowest layer).
    """

    scalar_terms: tuple[str, ...] = ("loss", "recon")  # the entries of loss_terms logged at each stage
    # what model.monitor may name: logged validation values where lower is better (the checkpoint,
    # early-stopping and plateau-scheduler configs keep the lowest); checked by vae.config.validate
    monitors: tuple[str, ...] = ("val/loss", "val/recon")
    logs_kl_per_dim = False  # whether loss_terms has a kl_per_dim ``(D,)``, logged at validation
    watched_terms = ("recon", "kl", "loss")  # stop at the first NaN or infinite one (TrainingChecks)
    divergence_hint = "A lower optimizer.lr or model.kl_warmup_epochs may help."

    def __init__(
        self,
        encoder_out_dim: int,
        encoder: ModuleFactory | None = None,
        decoder: ModuleFactory | None = None,
        likelihood: Likelihood | None = None,
        img_shape: Sequence[int] = (1, 28, 28),
        latent_dim: int = 20,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        monitor: str = "val/loss",
        compile: bool = False,
        channels_last: bool = False,
        init_output_bias: bool = False,
        decoder_in_dim: int | None = None,
    ) -> None:
        super().__init__()
        # this and the subclasses' arguments, from their __init__ frames: the options every model shares
        # are saved here once (encoder_out_dim and decoder_in_dim follow from the latent sizes: each model sets them)
        self.save_hyperparameters(logger=False, ignore=[*FACTORIES, "encoder_out_dim", "decoder_in_dim"])
        self.compile_backbones, self.channels_last = compile, channels_last
        self.init_output_bias = init_output_bias
        self._compile_tried = False  # setup runs again for the test stage
        self.img_shape = tuple(img_shape)
        self.latent_dim = latent_dim
        self.monitor = monitor
        self.encoder = (encoder or MLPEncoder)(in_shape=self.img_shape, out_dim=encoder_out_dim)
        self.decoder = (decoder or MLPDecoder)(latent_dim=decoder_in_dim or latent_dim, out_shape=self.img_shape)
        self.likelihood = likelihood or Bernoulli()
        self.optimizer_factory = optimizer or partial(torch.optim.Adam, lr=1e-3)
        self.scheduler_factory = scheduler
        self.log_training_values = True  # whether this training step's values reach the logger (TrainingChecks)
        per_dim = self.kl_dim_names() if self.logs_kl_per_dim else []
        self.epoch_means = nn.ModuleDict(
            {
                "val": nn.ModuleDict({name: ImageMean() for name in [*self.scalar_terms, *per_dim]}),
                "test": nn.ModuleDict({name: ImageMean() for name in self.scalar_terms}),
            }
        )

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

    def kl_dim_names(self) -> list[str]:
        """``kl_per_dim/z00`` ...: the names of the latent dimensions' KL values, zero-padded to sort."""
        width = len(str(self.latent_dim - 1))
        return [f"kl_per_dim/z{i:0{width}d}" for i in range(self.latent_dim)]

    def pixel_range(self) -> tuple[tuple[float, float], str, str] | None:
        """The pixel values the likelihood can model, who needs them and the fix (for the first-batch check)."""
        support = getattr(self.likelihood, "support", None)
        if support is None:
            return None
        name = getattr(self.likelihood, "name", type(self.likelihood).__name__)
        return support, f"likelihood={name}", "use likelihood=gaussian, or data in that range (no normalization)"

    def setup(self, stage: str) -> None:
        """Sets the output bias from the data and applies the speed options once the device is known
        (before Lightning moves the model, and before it loads a checkpoint's weights)."""
        if stage == "fit" and self.init_output_bias:
            self.decoder.set_output_bias(self.trainer.datamodule.mean_image(), self.likelihood.output_of)
        self.apply_memory_format()
        if self.compile_backbones and not self._compile_tried:
            self._compile_tried = True
            compile_modules([self.encoder, self.decoder], self.trainer.strategy.root_device)

    def apply_memory_format(self) -> None:
        """Puts the weights in channels-last layout if ``channels_last``: when a run starts, and when a
        model is rebuilt from its checkpoint, so that it is evaluated in the layout it trained in."""
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def _common_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        x, _ = batch  # labels are kept for plots, never used for training
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        terms = self.loss_terms(x)
        if stage == "train":  # per step, for live curves; none forces a host sync
            if self.log_training_values:
                for name in self.scalar_terms:
                    self.log(f"train/{name}", terms[name], on_step=True, on_epoch=False)
        else:  # epoch means over every image, logged at the epoch's end
            means = self.epoch_means[stage]
            for name in self.scalar_terms:
                means[name].update(terms[name], len(x))
            if stage == "val" and self.logs_kl_per_dim:
                for name, kl in zip(self.kl_dim_names(), terms["kl_per_dim"], strict=True):
                    means[name].update(kl, len(x))
        return terms

    def _log_epoch_means(self, stage: str) -> None:
        for name, mean in self.epoch_means[stage].items():
            self.log(f"{stage}/{name}", mean, prog_bar=stage == "val" and name == "loss")

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._common_step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._common_step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._common_step(batch, "test")

    def on_validation_epoch_start(self) -> None:
        for mean in self.epoch_means["val"].values():
            mean.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_means("val")

    def on_test_epoch_start(self) -> None:
        for mean in self.epoch_means["test"].values():
            mean.reset()

    def on_test_epoch_end(self) -> None:
        self._log_epoch_means("test")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        schedule = {"scheduler": scheduler, "interval": "epoch"}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            # it reads the monitored value, which exists only after the epochs that validate
            every = self.trainer.check_val_every_n_epoch if self._trainer is not None else 1
            schedule.update(monitor=self.monitor, frequency=every or 1)
        return {"optimizer": optimizer, "lr_scheduler": schedule}
