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
