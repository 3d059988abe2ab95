"""What a sweep's jobs ask of SLURM (``hydra/launcher=slurm``), derived from the trainer, and checked against
what the partition offers before anything is submitted.

The launcher's resources follow the trainer through resolvers (``conf/hydra/launcher/slurm.yaml``), so a
user writes each fact once: the GPUs of a node follow ``trainer.accelerator`` and ``trainer.devices``, the
tasks of a node follow ``trainer.devices`` under DDP (one process per device, started by SLURM), the
nodes follow ``trainer.num_nodes``. Any of them set on the command line wins. The resolvers never fail:
what they cannot decide is refused by :func:`request_problems`, with the key and what to write, before the
first job is submitted.
"""

import re
import shutil
import subprocess
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

_GPU = re.compile(r"gpu(?::[^:,()]+)?:(\d+)")  # gres such as gpu:4 or gpu:a100:4(S:0-1)


@dataclass(frozen=True)
class Partition:
    """What the nodes of a partition hold: the most any one node offers, and how many nodes there are."""

    name: str
    cpus: int
    mem_mb: int
    gpus: int
    nodes: int


def partition(name: str | None) -> Partition | None:
    """The partition ``name`` (None: the cluster's default) as ``sinfo`` describes it; None when no
    cluster answers. Raises ValueError when the cluster has no such partition."""
    if shutil.which("sinfo") is None:
        return None
    args = ["sinfo", "--noheader", "--format=%P|%c|%m|%G|%D"]
    try:
        listed = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listed.returncode != 0:
        return None
    rows = [line.split("|") for line in listed.stdout.split("\n") if line.count("|") == 4]
    names = sorted({row[0].rstrip("*") for row in rows})
    wanted = [row for row in rows if (row[0].rstrip("*") == name if name else row[0].endswith("*"))]
    if not wanted:
        raise ValueError(f"no such partition (sinfo lists {', '.join(names) or 'none'})")

    def number(text: str) -> int:
        return int(re.sub(r"\D.*", "", text) or 0)  # "2+" (nodes of several sizes) reads as 2

    gpus = [max((int(n) for n in _GPU.findall(row[3])), default=0) for row in wanted]
    return Partition(
        wanted[0][0].rstrip("*"),
        cpus=max(number(row[1]) for row in wanted),
        mem_mb=max(number(row[2]) for row in wanted),
        gpus=max(gpus),
        nodes=sum(number(row[4]) for row in wanted),
    )


def launched_on_slurm(hydra: DictConfig) -> bool:
    """Whether a sweep's jobs are SLURM jobs (``hydra/launcher=slurm``), as Hydra's own config node says."""
    return str(OmegaConf.select(hydra, "launcher._target_", default="")).endswith("SlurmLauncher")


def _devices(devices) -> int:
    return devices if isinstance(devices, int) and devices > 0 else 1


def gpus_per_node(accelerator: str, devices, partition_name: str | None) -> int:
    """GPUs a job asks of each node: none on the CPU; ``trainer.devices`` on GPUs; under ``auto``, what the
    partition holds decides (0 when it holds none, or when no cluster answers: refused then)."""
    if accelerator == "cpu":
        return 0
    if accelerator in ("gpu", "cuda"):
        return _devices(devices)
    try:
        found = partition(partition_name)
    except ValueError:
        return 0  # refused with the reason by request_problems
    return _devices(devices) if found and found.gpus else 0


def tasks_per_node(devices, strategy) -> int:
    """Processes SLURM starts on each node: one per device (Lightning runs several devices as DDP, whose
    ranks it reads from SLURM's environment), unless a strategy of one process is named."""
    one_process = strategy and "ddp" not in str(strategy) and str(strategy) != "auto"
    return 1 if one_process else _devices(devices)


def mem_gb(tasks: int) -> int:
    """Memory a job asks of each node: 4 GB a process (a default run, evaluation included, peaked at 1.5 GB
    resident on a CPU)."""
    return 4 * tasks


OmegaConf.register_new_resolver("slurm_gpus_per_node", gpus_per_node, replace=True)
OmegaConf.register_new_resolver("slurm_tasks_per_node", tasks_per_node, replace=True)
OmegaConf.register_new_resolver("slurm_mem_gb", mem_gb, replace=True)


def request_problems(launcher: dict, accelerator: str) -> list[str]:
    """What no node of the partition can hold, each naming the keys, the values and what it offers; and a
    ``trainer.accelerator=auto`` that the partition does not decide. Empty when no cluster answers here
    (sbatch will tell)."""
    name = launcher.get("partition")
    key = f"hydra.launcher.partition={name}" if name else "the default partition"
    try:
        found = partition(name)
    except ValueError as err:
        return [f"{key}: {err}"]
    if found is None:
        if accelerator == "auto":
            return [
                "trainer.accelerator=auto under hydra/launcher=slurm: no cluster answers on this machine to say "
                "whether its nodes hold GPUs; use trainer=cpu or trainer=gpu"
            ]
        return []
    tasks, cpus = launcher.get("tasks_per_node") or 1, launcher.get("cpus_per_task") or 1
    asked = {
        "cpus": (tasks * cpus, f"hydra.launcher.cpus_per_task={cpus} x tasks_per_node={tasks}", found.cpus, "CPUs"),
        "mem": ((launcher.get("mem_gb") or 0) * 1024, f"hydra.launcher.mem_gb={launcher.get('mem_gb')}",
                found.mem_mb, "MB"),
        "gpus": (launcher.get("gpus_per_node") or 0, f"hydra.launcher.gpus_per_node={launcher.get('gpus_per_node')}",
                 found.gpus, "GPUs"),
    }  # fmt: skip
    problems = [
        f"{what} asks {value} {unit} of a node; the most a node of partition {found.name} offers is {offered}"
        for value, what, offered, unit in asked.values()
        if value > offered
    ]
    if (launcher.get("nodes") or 1) > found.nodes:
        problems.append(
            f"hydra.launcher.nodes={launcher.get('nodes')}: partition {found.name} has {found.nodes} node(s)"
        )
    return problems
