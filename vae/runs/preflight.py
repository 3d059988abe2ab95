"""A single run's folder checked before Hydra writes into it (its ``.hydra/`` record and its log).

A run given a folder that holds a run of other settings, or one that runs now, is refused by the run
itself (:mod:`vae.runs.run`), but by then Hydra has rewritten ``.hydra/config.yaml`` there, which
``load_model`` reads to rebuild that folder's model. Hydra calls this callback before it writes anything
(``hydra.callbacks`` in ``conf/hydra/default.yaml``); sweeps are checked by their sweepers the same way.
"""

import sys
from typing import Any

from hydra.experimental.callback import Callback
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from vae.runs.continuation import decide, refusal_message
from vae.runs.job import job_settings


class RunFolderCheck(Callback):
    """Refuses (exit code 1, with the message) a single run whose folder may not be run into."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if rank_zero_only.rank != 0:
            return  # a DDP process Lightning started for rank 0's run, which holds the folder
        folder, _, now = job_settings(config)
        decision = decide(folder, now, now.get("ckpt_path"))
        if decision.refusal is not None:
            sys.exit(refusal_message([decision], what="run"))
