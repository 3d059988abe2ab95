"""Measures of model quality."""

from vae.metrics.likelihood import in_pixel_units, iw_log_likelihood

__all__ = ["in_pixel_units", "iw_log_likelihood"]
