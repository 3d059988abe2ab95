"""Trains a dataset's reference classifier and writes its weights and card where its data config says.

python -m vae.metrics.train_classifier                                             # MNIST, from $VAE_DATA_DIR
python -m vae.metrics.train_classifier --data fashion_mnist --batch-norm --cosine --epochs 20
"""

import argparse
import json
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from vae.data import ImageDataModule
from vae.data.datasets import dataset_spec
from vae.metrics.classifier import classifier_weights, sha256
from vae.metrics.classifier_module import ClassifierModule
from vae.utils.hardware import describe_hardware


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-norm", action="store_true", help="batch normalization after each convolution")
    parser.add_argument("--cosine", action="store_true", help="decay the learning rate to 0 along a cosine")
    parser.add_argument("--data", default="mnist", help="a data config: its name in conf/data/ or its file")
    parser.add_argument("--val-size", type=int, default=5000, help="training images held out for validation")
    parser.add_argument("--data-root", default=None, help="folder holding <dataset>/raw/ (default $VAE_DATA_DIR)")
    parser.add_argument("--verify", default="md5", choices=["md5", "header"])
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="weights file (default: the data config's dataset.classifier); the card goes beside it (.json)",
    )
    args = parser.parse_args(argv)

    L.seed_everything(args.seed, workers=True)
    spec = dataset_spec(args.data)
    if args.out is None and spec.classifier is None:
        parser.error(f"--data {args.data}: its dataset.classifier is null; say where the weights go with --out")
    out = args.out or classifier_weights(spec.classifier)
    datamodule = ImageDataModule(
        spec,
        root=args.data_root,
        batch_size=args.batch_size,
        val_size=args.val_size,
        seed=args.seed,
        verify=args.verify,
    )
    module = ClassifierModule(
        lr=args.lr,
        num_classes=len(spec.classes),
        batch_norm=args.batch_norm,
        cosine_epochs=args.epochs if args.cosine else 0,
    )
    with tempfile.TemporaryDirectory() as folder:
        best = ModelCheckpoint(dirpath=folder, monitor="val/accuracy", mode="max")
        trainer = L.Trainer(max_epochs=args.epochs, devices=1, logger=False, callbacks=[best], default_root_dir=folder)
        trainer.fit(module, datamodule=datamodule)
        test = trainer.test(module, datamodule=datamodule, ckpt_path="best")[0]
        net = ClassifierModule.load_from_checkpoint(best.best_model_path, weights_only=True).net
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out)
    card = {
        "dataset": spec.name,
        "classes": spec.classes,
        "batch_norm": args.batch_norm,
        "cosine": args.cosine,
        "test_accuracy": test["test/accuracy"],
        "val_accuracy": float(best.best_model_score),
        "test_images": len(datamodule.test_dataset),
        "parameters": sum(p.numel() for p in net.parameters()),
        "bytes": out.stat().st_size,
        "sha256": sha256(out),
        "command": " ".join(["python -m vae.metrics.train_classifier", *(sys.argv[1:] if argv is None else argv)]),
        "epochs": args.epochs,
        "trained": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hardware": describe_hardware(),
        "torch": torch.__version__,
    }
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))
    return card


if __name__ == "__main__":
    main()
