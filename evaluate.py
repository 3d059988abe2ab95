"""Evaluate trained runs: ``python evaluate.py ckpt_path=<checkpoint | run folder | sweep folder>``.

Examples:
    python evaluate.py ckpt_path=logs/runs/<run>/checkpoints/last.ckpt
    python evaluate.py ckpt_path=logs/runs/<run>                         # its best checkpoint
    python evaluate.py ckpt_path=logs/multirun/<sweep> evaluation.metrics=cheap
"""

import gc

gc.disable()  # until the imports below are done (see there)

import hydra
from omegaconf import DictConfig

from vae.evaluation import evaluate

# as in train.py: the imports' objects set apart from the cyclic collector, which traversed them again and again
gc.collect()
gc.freeze()
gc.enable()


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
