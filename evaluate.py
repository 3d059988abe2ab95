"""Evaluate trained runs: ``python evaluate.py ckpt_path=<checkpoint | run folder | sweep folder>``.

Examples:
    python evaluate.py ckpt_path=logs/runs/<run>/checkpoints/last.ckpt
    python evaluate.py ckpt_path=logs/runs/<run>                         # its best checkpoint
    python evaluate.py ckpt_path=logs/multirun/<sweep> evaluation.metrics=cheap
"""

import hydra
from omegaconf import DictConfig

from vae.evaluation import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
