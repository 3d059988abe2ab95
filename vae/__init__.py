"""VAEs and auto-encoders on MNIST with PyTorch Lightning and Hydra."""

import vae.config  # noqa: F401  (registers the config schemas Hydra checks while composing)
