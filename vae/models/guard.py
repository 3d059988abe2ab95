"""Stopping a run at the first NaN or infinite loss, without a host sync every step."""

import torch


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the run stops before anything is saved from it."""

    def __init__(self, step: int, epoch: int, terms: list[str], hint: str) -> None:
        self.step, self.epoch, self.terms = step, epoch, terms
        super().__init__(
            f"the loss became NaN or infinite at training step {step} (epoch {epoch}), in the "
            f"{' and '.join(terms)} term{'s' if len(terms) > 1 else ''}; training stopped. {hint}"
        )


class NonFiniteGuard:
    """Mixin for a LightningModule: ``note_non_finite(terms)`` in each training step records, on the
    device, the first step at which one of ``watched`` was not finite; ``on_train_batch_end`` reads
    it back every ``log_every_n_steps`` batches and at each epoch's last batch (one host read), which
    comes before validation and so before any checkpoint: none is ever written from a diverged model.
    """

    watched: tuple[str, ...] = ("recon", "kl", "loss")  # loss terms checked, in the order named
    hint = "A lower optimizer.lr or model.kl_warmup_epochs may help."

    def register_guard(self) -> None:
        """Call in ``__init__``: the first bad step, and which of ``watched`` were not finite at it."""
        self.register_buffer("_first_bad_step", torch.tensor(-1), persistent=False)
        self.register_buffer("_bad_terms", torch.zeros(len(self.watched), dtype=torch.bool), persistent=False)

    def note_non_finite(self, terms: dict[str, torch.Tensor], step: int | None = None) -> None:
        """Records ``terms`` of training step ``step`` (default: the trainer's global step)."""
        step = self.trainer.global_step if step is None else step
        absent = torch.zeros((), dtype=torch.bool, device=self._bad_terms.device)  # e.g. an AE has no KL
        bad = torch.stack([~torch.isfinite(terms[name]) if name in terms else absent for name in self.watched])
        first = bad.any() & (self._first_bad_step < 0)
        self._first_bad_step = torch.where(first, step, self._first_bad_step)
        self._bad_terms = torch.where(first, bad, self._bad_terms)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        last = batch_idx + 1 == self.trainer.num_training_batches
        if (batch_idx + 1) % max(1, self.trainer.log_every_n_steps) and not last:
            return
        step = int(self._first_bad_step)
        if step >= 0:
            terms = [name for name, bad in zip(self.watched, self._bad_terms.tolist(), strict=True) if bad]
            raise NonFiniteLossError(step, self.current_epoch, [t for t in terms if t != "loss"] or terms, self.hint)
