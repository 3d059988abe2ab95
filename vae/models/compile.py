"""torch.compile for the backbones, where this machine can run it."""

import os
import shutil

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn


def compile_problem(device: torch.device) -> str | None:
    """Why torch.compile cannot run on ``device`` here, or None when it can."""
    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile is not supported on this Python version"
    if device.type == "cuda":
        try:
            import triton  # noqa: F401  (Inductor's GPU kernels are written in Triton)
        except ImportError:
            return "Triton is not installed"
    if device.type == "cpu" and not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "clang++")):
        return "no C++ compiler found (Inductor builds CPU kernels with one)"
    return None


def compile_modules(modules: list[nn.Module], device: torch.device) -> bool:
    """Compiles ``modules`` in place (state-dict keys unchanged), or warns and leaves them eager.

    Returns:
        Whether they were compiled.
    """
    problem = compile_problem(device)
    if problem:
        rank_zero_warn(f"model.compile=true is ignored, the model runs eagerly: {problem}")
        return False
    for module in modules:
        module.compile()  # lazy: the first forward pass compiles
    return True
