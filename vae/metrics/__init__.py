"""Measures of model quality."""

from vae.metrics.likelihood import iw_log_likelihood

__all__ = ["iw_log_likelihood"]
