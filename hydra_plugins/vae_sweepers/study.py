"""What a search keeps in its study, beyond Optuna's own trials: its sampler's state, and which failed trials
were run again. Both live in the study's storage (a study attribute), so any storage URL carries them."""

import base64
import logging
import pickle

import optuna
from optuna.trial import TrialState

log = logging.getLogger(__name__)
SAMPLER = "vae_sampler_state"  # the study's system attribute holding the pickled sampler
RETRY_OF = "retry_of"  # a trial's user attribute: the number of the failed trial it runs again


def keep_sampler(study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    """Saves the study's sampler, random state included, after the trial it has just proposed.

    Optuna keeps trials in the storage but not the sampler, whose random stream (and the start-up phase of
    TPE) would start again from its seed in a search continued after a kill, and propose the early trials'
    settings again; pickling the sampler is Optuna's own advice for resuming a study.
    """
    pickled = base64.b64encode(pickle.dumps(study.sampler)).decode()
    storage.set_study_system_attr(storage.get_study_id_from_name(study.study_name), SAMPLER,
                                  {"after_trial": len(study.trials) - 1, "sampler": pickled})  # fmt: skip


def restore_sampler(study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    """Puts back the sampler a killed search saved (a new search keeps the configured one), so the search
    continues its random stream where it was."""
    state = storage.get_study_system_attrs(storage.get_study_id_from_name(study.study_name)).get(SAMPLER)
    if state is None:
        return
    saved = pickle.loads(base64.b64decode(state["sampler"]))
    if type(saved) is not type(study.sampler):
        configured = type(study.sampler).__name__
        log.warning(f"The study was searched with {type(saved).__name__}; it continues with it, not {configured}")
    study.sampler = saved
    if state["after_trial"] < len(study.trials) - 1:  # killed between a proposal and its save
        after = state["after_trial"]
        log.warning(f"The sampler was saved after trial {after}: later proposals may differ from an unbroken search")


def retry_failed(study: optuna.Study) -> list[int]:
    """Queues every failed trial not yet run again with its settings (Optuna's finished trials cannot run
    again: the retry is a new trial, noted with ``retry_of``); returns the failed trials' numbers."""
    retried = {t.user_attrs[RETRY_OF] for t in study.get_trials(deepcopy=False) if RETRY_OF in t.user_attrs}
    failed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number not in retried]
    for trial in failed:
        study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})
    return [t.number for t in failed]


def counted(study: optuna.Study) -> int:
    """Finished trials that count toward ``n_trials``: a failed trial run again counts through its retry."""
    retried = {t.user_attrs[RETRY_OF] for t in study.get_trials(deepcopy=False) if RETRY_OF in t.user_attrs}
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    return sum(not (t.state == TrialState.FAIL and t.number in retried) for t in done)
