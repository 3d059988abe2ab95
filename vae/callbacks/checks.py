"""What watches training, kept out of the models: a NaN guard, a first-batch pixel check and the logging
throttle."""

import lightning as L
import torch

from vae.config.validation import ConfigError
from vae.utils.steps import batches_stepped

NOT_FOUND = -(2**62)  # the negated step of "no bad step", below any real one


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the run stops before anything is saved from it."""

    def __init__(self, step: int, epoch: int, terms: list[str], hint: str) -> None:
        self.step, self.epoch, self.terms = step, epoch, terms
        super().__init__(
            f"the loss became NaN or infinite at training step {step} (epoch {epoch}), in the "
            f"{' and '.join(terms)} term{'s' if len(terms) > 1 else ''}; training stopped. {hint}"
        )


def check_pixel_range(x: torch.Tensor, support: tuple[float, float], who: str, fix: str) -> None:
    """Raises a ConfigError naming ``who`` if the first training batch ``x`` lies outside ``support``."""
    low, high = x.min().item(), x.max().item()
    if low < support[0] or high > support[1]:
        problem = f"the first training batch holds values in [{low:.3g}, {high:.3g}]"
        allowed = f"[{support[0]:g}, {support[1]:g}]"
        raise ConfigError([f"{who}: needs pixels in {allowed}, but {problem}; {fix}"])


class TrainingChecks(L.Callback):
    """Three checks of a training run, none of which costs a host sync per step.

    - Pixels: the first training batch must lie in the range the model declares
      (``pl_module.pixel_range()``: ``(support, who, fix)``, or None for any), else a ConfigError.
    - Logging throttle: sets ``pl_module.log_training_values`` before each training batch, True when
      Lightning writes step values to the loggers after it (every ``log_every_n_steps`` batches; see
      ``logs_now``). Each ``self.log`` call costs a fraction of a millisecond, as much as a small
      model's step, so the models log training values only then.
    - NaN guard: the entries ``pl_module.watched_terms`` (default: ``loss``) of what each training step returns are
      checked on the device; the first step at which one was not finite is read back every
      ``log_every_n_steps`` batches and at each epoch's last batch, before validation and so before
      any checkpoint: none is ever written from a diverged model. Under DDP the processes combine
      what they found at that read (one all-reduce), so that all of them raise together.
    """

    def __init__(self) -> None:
        self._pixels_checked = False
        self._step = 0  # the global step of the current batch, before its optimizer steps
        self._watched: tuple[str, ...] = ("loss",)
        self._first_bad: torch.Tensor | None = None  # on the device: the first bad step, -1 if none
        self._bad_terms: torch.Tensor | None = None  # on the device: which watched terms were bad at it

    @staticmethod
    def logs_now(trainer: L.Trainer) -> bool:
        """Whether Lightning writes the step values logged in the current training batch to the loggers.

        Lightning writes them after batch n (1-based) of the run when ``n % log_every_n_steps == 0``
        (``_LoggerConnector.should_update_logs``), counting the batches that stepped the optimizers
        (:func:`vae.utils.steps.batches_stepped`: before this batch, the ones done). It also writes them
        whenever ``trainer.should_stop`` is set.
        """
        every = trainer.log_every_n_steps
        if trainer.fast_dev_run or trainer.should_stop:
            return True
        return every > 0 and (batches_stepped(trainer) + 1) % every == 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._watched = tuple(getattr(pl_module, "watched_terms", self._watched))
        self._first_bad = torch.full((), -1, dtype=torch.long, device=pl_module.device)
        self._bad_terms = torch.zeros(len(self._watched), dtype=torch.bool, device=pl_module.device)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if not self._pixels_checked:
            self._pixels_checked = True
            needs = pl_module.pixel_range() if hasattr(pl_module, "pixel_range") else None
            if needs is not None:
                check_pixel_range(batch[0], *needs)
        self._step = trainer.global_step
        pl_module.log_training_values = self.logs_now(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int):
        self._note(outputs)
        last = batch_idx + 1 == trainer.num_training_batches
        if (batch_idx + 1) % max(1, trainer.log_every_n_steps) and not last:
            return
        found = self._first_bad >= 0
        # one all-reduce (max) for every process's news: whether any found one, the earliest bad
        # step among them, and every term that was bad
        news = torch.cat([found[None].long(), torch.where(found, -self._first_bad, NOT_FOUND)[None], self._bad_terms])
        news = trainer.strategy.reduce(news.long(), reduce_op="max").tolist()  # the one host read
        if news[0]:
            terms = [name for name, bad in zip(self._watched, news[2:], strict=True) if bad]
            terms = [t for t in terms if t != "loss"] or terms  # the loss is bad whenever a part is
            hint = getattr(pl_module, "divergence_hint", "")
            raise NonFiniteLossError(-news[1], trainer.current_epoch, terms, hint)

    def _note(self, outputs) -> None:
        """Records, on the device, which watched entries of a step's ``outputs`` were not finite."""
        if not isinstance(outputs, dict):
            return
        absent = torch.zeros((), dtype=torch.bool, device=self._bad_terms.device)  # e.g. g_loss on d-only steps
        bad = torch.stack([~torch.isfinite(outputs[name]) if name in outputs else absent for name in self._watched])
        first = bad.any() & (self._first_bad < 0)
        self._first_bad = torch.where(first, self._step, self._first_bad)
        self._bad_terms = torch.where(first, bad, self._bad_terms)
