"""SIGTERM at any moment of a run: the run stops at a step it can continue from, on every process.

Schedulers send SIGTERM some time before they kill a job (SLURM, preemption, ``scancel``). Outside
Lightning's loops (building the data and model, the evaluation after testing) the run stops at once.
Inside them the signal is only noted, and the run stops where it can be continued from:

- training: after the current batch, at the step where Lightning itself stops on SIGTERM (its progress
  and the data loader's position then agree), on every process at the same step: the processes agree at
  each batch's end, whichever of them was signalled, and ``vae.callbacks.RunCheckpoint`` saves there;
- validation: once it has ended, so that its epoch's checkpoints are written: at the next training batch,
  or at the end of training after the last validation;
- testing: at the next batch on one process; at the start or the end of the test under DDP, where every
  process is (test shards are not padded, so the processes may hold different numbers of batches).

Lightning's own handler broadcasts from inside the signal handler, which hangs when every process of a DDP
run is signalled at once (each rank then broadcasts a different number of times). It is set aside while
Lightning's loops run and called once, on every process at the same point, after they agree; Lightning
then raises where it does on SIGTERM, and puts back the handler it found (the run-wide one) when its loop
ends. Either way the run ends with ``SIGTERMException`` (a ``SystemExit``), which ``vae.runs.run`` records
as ``interrupted`` before the process exits with 143, the shell's code for "terminated".
"""

import signal
import threading

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # Python's handlers live there only


def _submitit_requeue(handler) -> bool:
    """Whether ``handler`` is submitit's, which checkpoints the job's submission and requeues it."""
    owner = getattr(handler, "__self__", None)
    return type(owner).__module__.startswith("submitit") and getattr(handler, "__name__", "") == (
        "checkpoint_and_try_requeue"
    )


class Sigterm:
    """The run's SIGTERM handling: ``install`` before the run starts, ``restore`` when it ends.

    In a SLURM job of ``hydra/launcher=slurm``, submitit's USR2 handler (SLURM's warning before a time
    limit, or a preemption) requeues the job at once, losing the work since the last checkpoint. It is taken
    over: USR2 stops the run like SIGTERM, at a step it can continue from, and once the run has recorded
    itself interrupted, submitit's handler requeues the job (:meth:`requeue`).
    """

    def __init__(self) -> None:
        self.received = False
        self.in_lightning = False  # a loop of Lightning runs: it stops at the point it can continue from
        self._previous = None
        self._requeue = None  # submitit's USR2 handler, when the run is a submitit job
        self.warned = False  # USR2 came: the job is to be requeued

    def install(self) -> None:
        if _in_main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            if _submitit_requeue(usr2 := signal.getsignal(signal.SIGUSR2)):
                self._requeue = usr2
                signal.signal(signal.SIGUSR2, self._handle_warning)

    def _handle_warning(self, signum, frame) -> None:
        self.warned = True
        self._handle(signum, frame)

    def requeue(self) -> None:
        """After the record: submitit requeues the job warned by USR2 and exits (rank 0), or returns."""
        if self._requeue is not None and self.warned:
            self._requeue(signal.SIGUSR2, None)

    def _handle(self, signum, frame) -> None:
        self.received = True
        if not self.in_lightning:
            raise SIGTERMException()

    def note(self, signum, frame) -> None:
        """Only notes the signal (while Lightning's loops run, and while a record is written)."""
        self.received = True

    def hold(self) -> None:
        """From now on only notes the signal: what the run is writing is not cut short."""
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self.note)
        if self._requeue is not None:
            signal.signal(signal.SIGUSR2, self.note)

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
        if self._requeue is not None:
            signal.signal(signal.SIGUSR2, self._requeue)

    def callback(self) -> "StopOnSigterm":
        return StopOnSigterm(self)


class StopOnSigterm(L.Callback):
    """Stops Lightning's loops where a run can be continued from, after a SIGTERM (see the module)."""

    def __init__(self, sigterm: Sigterm) -> None:
        self.sigterm = sigterm
        self._lightning = None  # Lightning's handler, set aside
        self._told = False

    def _take_over(self) -> None:
        self.sigterm.in_lightning = True
        if _in_main_thread() and (current := signal.getsignal(signal.SIGTERM)) != self.sigterm.note:
            self._lightning = current
            signal.signal(signal.SIGTERM, self.sigterm.note)

    def _agreed(self, trainer: L.Trainer) -> bool:
        """Whether any process was signalled: a collective under DDP, so only where every process is."""
        if trainer.world_size > 1:
            return trainer.strategy.reduce_boolean_decision(self.sigterm.received, all=False)
        return self.sigterm.received

    def on_sanity_check_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take_over()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take_over()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take_over()

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        # every process ends every training batch (DDP keeps them in step), so they can agree here
        if not self._told and self._agreed(trainer) and callable(self._lightning):
            self._told = True
            self._lightning(signal.SIGTERM, None)  # Lightning stops after this batch, on every process

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # signalled during the last epoch's validation: its checkpoints are written; stop before the test
        if self._agreed(trainer):
            raise SIGTERMException()

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take_over()
        if self._agreed(trainer):
            raise SIGTERMException()

    def on_test_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.world_size == 1 and self.sigterm.received:
            raise SIGTERMException()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._agreed(trainer):
            raise SIGTERMException()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Lightning has put the run-wide handler back; a signal noted since the last check stops the run now
        self.sigterm.in_lightning = False
        if self.sigterm.received:
            raise SIGTERMException()
