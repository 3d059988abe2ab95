"""Train a VAE or an auto-encoder on MNIST, then test it: ``python train.py [overrides]``.

Examples:
    python train.py                                    # MLP VAE, 10 epochs
    python train.py model=ae backbone=conv trainer=gpu
    python train.py -m model=vae,ae model.latent_dim=2,10,20
"""

import hydra
from omegaconf import DictConfig

from vae.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return train(cfg)


if __name__ == "__main__":
    main()
