"""Measures trained models: likelihood, latent space, and sample quality under the reference classifier.

Entry point: ``python evaluate.py ckpt_path=<checkpoint | run folder | sweep folder>`` (``conf/eval.yaml``).
:mod:`vae.evaluation.suite` runs the parts (:mod:`~vae.evaluation.likelihood`, :mod:`~vae.evaluation.quality`)
and records them.
"""

from vae.evaluation.suite import (
    SCALARS,
    best_checkpoint,
    checkpoints_to_evaluate,
    evaluate,
    evaluate_checkpoint,
    table,
)

__all__ = ["SCALARS", "best_checkpoint", "checkpoints_to_evaluate", "evaluate", "evaluate_checkpoint", "table"]
