"""Generative adversarial network (Goodfellow et al., 2014) on the VAEs' backbones, the usual baseline."""

from collections.abc import Callable, Sequence
from functools import partial

import lightning as L
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from vae.losses import discriminator_loss, generator_loss
from vae.metrics.classifier import at_classifier_size, reference_classifier
from vae.metrics.samples import Features
from vae.models.base import FACTORIES, ModuleFactory, in_batches
from vae.nets import MLPDecoder, MLPEncoder
from vae.priors import StandardNormalPrior


def fid_noise(n: int, latent_dim: int, batch_idx: int, rank: int) -> torch.Tensor:
    """The z of batch ``batch_idx`` of a validation or test epoch on process ``rank``: ``(n, latent_dim)``.

    The same at every epoch, so that FIDs of epochs compare; different on each process, whose
    fakes would otherwise repeat one another's under DDP (each process holds its own images).
    """
    # torch's CPU generator keeps 32 bits of a seed: 12 for the rank, 20 for the batch (up to 1M batches)
    seed = torch.Generator().manual_seed(rank << 20 | batch_idx)  # on one process, the seed is batch_idx
    return torch.randn(n, latent_dim, generator=seed)


class GAN(StandardNormalPrior, L.LightningModule):
    """Generator: the backbone's decoder, z ~ N(0, I) to pixel logits, then a sigmoid (pixels in [0, 1]).
    Discriminator: the backbone's encoder with one output, the logit of "real".

    Trained with manual optimization: every step updates the discriminator on
    -log D(x) - log(1 - D(G(z))), and every ``d_steps`` steps the generator on the non-saturating
    -log D(G(z)). Both are logged (``train/d_loss``, ``train/g_loss``, and ``train/d_real``,
    ``train/d_fake``, the discriminator's mean belief that real and generated images are real).
    Validation and test measure ``val/fid`` and ``test/fid``: as many samples as images. A GAN has
    no likelihood, so no validation loss: its config declares ``monitor: val/fid`` (the Fréchet
    distance of samples to the validation images in the reference classifier's features, lower is
    better), which ranks its checkpoints.

    Args:
        generator: ``generator(latent_dim=..., out_shape=...)`` builds the generator.
        discriminator: ``discriminator(in_shape=..., out_dim=1)`` builds the discriminator.
        img_shape: image shape ``(C, H, W)``.
        latent_dim: size of z.
        optimizer: ``optimizer(params=...)`` builds each network's optimizer (default: DCGAN's
            Adam, lr 2e-4, betas (0.5, 0.999)).
        label_smoothing: one-sided label smoothing: real images are labelled ``1 - label_smoothing``.
        instance_noise: standard deviation of Gaussian noise added to every image the
            discriminator sees, real or generated (0 turns it off).
        d_steps: discriminator updates per generator update.
        beta: ignored (a GAN has no KL term); accepted so one sweep can cover GANs and VAEs.
        monitor: ignored; the value that ranks epochs, declared in the model's config and read
            by the checkpoint and early-stopping configs (``val/fid``).
        ddp_strategy: ignored; the DDP strategy ``trainer=ddp`` reads from the model's config
            (DDP must look for parameters without gradients: each update leaves the other network's).
    """

    has_encoder = False  # visual callbacks and the evaluation skip what needs codes of images
    watched_terms = ("d_loss", "g_loss")  # stop at the first NaN or infinite one (TrainingChecks)
    monitors = ("val/fid",)  # what model.monitor may name (see LatentVariableModel.monitors)
    divergence_hint = "A lower model.optimizer.lr, model.label_smoothing or model.instance_noise may help."

    def __init__(
        self,
        generator: ModuleFactory | None = None,
        discriminator: ModuleFactory | None = None,
        img_shape: Sequence[int] = (1, 28, 28),
        latent_dim: int = 20,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        label_smoothing: float = 0.0,
        instance_noise: float = 0.0,
        d_steps: int = 1,
        beta: float = 1.0,
        monitor: str = "val/fid",
        ddp_strategy: str = "ddp_find_unused_parameters_true",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=[*FACTORIES, "generator", "discriminator", "ddp_strategy"])
        self.automatic_optimization = False
        self.img_shape, self.latent_dim = tuple(img_shape), latent_dim
        self.generator = (generator or MLPDecoder)(latent_dim=latent_dim, out_shape=self.img_shape)
        self.discriminator = (discriminator or MLPEncoder)(in_shape=self.img_shape, out_dim=1)
        self.optimizer_factory = optimizer or partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))
        self.log_training_values = True  # whether this training step's values reach the logger (TrainingChecks)
        self._fid: FrechetInceptionDistance | None = None  # built for each validation and test epoch
        self._classifier = None  # the reference classifier, kept outside the module (see _start_fid)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """Generated images ``(B, C, H, W)`` in [0, 1]."""
        return torch.sigmoid(self.generator(z))

    def decode_all(self, z: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """:meth:`decode_mean` of many codes: ``(N, C, H, W)`` float on the CPU."""
        return in_batches(self, self.decode_mean, z, batch_size)

    def configure_optimizers(self):
        """Two optimizers, in the order ``training_step`` takes them: generator, discriminator."""
        return [self.optimizer_factory(params=net.parameters()) for net in (self.generator, self.discriminator)]

    def _discriminate(self, x: torch.Tensor) -> torch.Tensor:
        if self.hparams.instance_noise > 0:
            x = x + self.hparams.instance_noise * torch.randn_like(x)
        return self.discriminator(x)  # (B, 1) logits

    def pixel_range(self) -> tuple[tuple[float, float], str, str]:
        """The generator's pixels lie in [0, 1]; real ones elsewhere would make them trivially apart."""
        return (0.0, 1.0), "model=gan", "use data.normalize=false"

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        x, _ = batch
        opt_g, opt_d = self.optimizers()
        fake = self.decode_mean(torch.randn(len(x), self.latent_dim, device=x.device, dtype=x.dtype))

        # each update toggles the other network's parameters off: its loss leaves them no gradients
        with self.toggled_optimizer(opt_d):
            real_logits, fake_logits = self._discriminate(x), self._discriminate(fake.detach())
            d_loss = discriminator_loss(real_logits, fake_logits, real_target=1.0 - self.hparams.label_smoothing)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
        # the discriminator's mean belief that real and generated images are real
        beliefs = {"d_real": real_logits.detach().sigmoid().mean(), "d_fake": fake_logits.detach().sigmoid().mean()}
        values = {"d_loss": d_loss.detach(), **beliefs}

        if (batch_idx + 1) % self.hparams.d_steps == 0:
            with self.toggled_optimizer(opt_g):
                g_loss = generator_loss(self._discriminate(fake))
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(g_loss)
                opt_g.step()
            values["g_loss"] = g_loss.detach()
        if self.log_training_values:
            for name, value in values.items():
                self.log(f"train/{name}", value, prog_bar=name.endswith("loss"), batch_size=len(x))
        return values

    # --- validation and test: the Fréchet distance of samples to held-out images -------------------
    def _start_fid(self) -> None:
        if self._classifier is None:  # the dataset's, loaded (and its checksum verified) once per run
            classifier = reference_classifier(self.trainer.datamodule.dataset, self.device)
            object.__setattr__(self, "_classifier", classifier)
        fid = FrechetInceptionDistance(feature=Features(self._classifier)).to(self.device)
        # not a submodule: the classifier stays out of checkpoints, parameter counts and DDP
        object.__setattr__(self, "_fid", fid)

    def _fid_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, _ = batch
        z = fid_noise(len(x), self.latent_dim, batch_idx, self.global_rank).to(x.device, x.dtype)
        self._fid.update(at_classifier_size(x.float()), real=True)
        self._fid.update(at_classifier_size(self.decode_mean(z).float()), real=False)

    def _log_fid(self, stage: str) -> None:
        self.log(f"{stage}/fid", self._fid.compute(), prog_bar=stage == "val", sync_dist=False)
        self._fid = None

    def on_validation_epoch_start(self) -> None:
        self._start_fid()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._fid_step(batch, batch_idx)

    def on_validation_epoch_end(self) -> None:
        self._log_fid("val")

    def on_test_epoch_start(self) -> None:
        self._start_fid()

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._fid_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self._log_fid("test")
