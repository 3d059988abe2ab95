"""VAEs and auto-encoders on MNIST with PyTorch Lightning and Hydra."""
