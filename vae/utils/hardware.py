"""A short description of the machine, for the records that come with measured numbers."""

import os
import platform

import torch


def describe_hardware(device: torch.device | str | None = None) -> str:
    """E.g. 'AMD EPYC, 2 CPU cores' or 'NVIDIA H100 80GB HBM3 (AMD EPYC, 16 CPU cores)'."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    host = f"{cpu}, {os.cpu_count()} CPU cores"
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return f"{torch.cuda.get_device_name(device)} ({host})" if device.type == "cuda" else host


def cuda_checks_without_nvml() -> None:
    """Where no GPU can be used, lets ``torch.cuda.is_available()`` answer from CUDA's cached device count.

    Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` when it is imported, so that checking for a GPU does not
    initialise CUDA in a process that will fork. torch then asks NVML at every check, loading its library
    again each time, and Adam and AdamW check at every step (their CUDA-graph capture check). On a machine with
    a CUDA build of torch and no usable GPU, the library is not found and the search costs 37 microseconds a
    step on a 2-core CPU (benchmarks/step_costs.py), which a plain loop, not importing Lightning, does not pay.
    With no GPU there is no CUDA to initialise, so the variable is taken out there; where a GPU is usable it
    stays, and CUDA caches the count once initialised.
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and not torch.cuda.is_available():
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]
