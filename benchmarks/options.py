"""The command-line options the benchmarks share: where they run and the data they read."""

import argparse
import os
from pathlib import Path

import torch

from vae.data.datasets import dataset_spec
from vae.data.files import ensure_files


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--data-root``, ``--cache-dir`` and ``--verify``."""
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-root", type=Path, default=None, help="folder holding MNIST/raw/ ($VAE_DATA_DIR)")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    parser.add_argument("--verify", default="md5", choices=["md5", "header"], help="check of the MNIST files")


def data_folders(args: argparse.Namespace) -> tuple[Path, Path]:
    """The data root (``--data-root``, else ``$VAE_DATA_DIR``, else ``data``) and the folder of its extracted
    files, which are made available and checked first."""
    root = (args.data_root or Path(os.environ.get("VAE_DATA_DIR", "data"))).resolve()
    return root, ensure_files(root, args.cache_dir.resolve(), dataset_spec(), md5=args.verify == "md5")
