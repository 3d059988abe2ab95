"""``resume=<run folder>``: continue a stopped run in its own folder, from its last checkpoint;
``resume=<sweep folder>``: continue a sweep in its folder (see :mod:`vae.runs.continuation`)."""

import re
from pathlib import Path

from omegaconf import OmegaConf

from vae.runs.lock import RUN_LOCK, SWEEP_LOCK, holder_if_live


def resume_arguments(args: list[str]) -> list[str]:
    """Command-line overrides with ``resume=<run folder>`` replaced by what continues that run.

    That is the run's own overrides (``<run>/.hydra/overrides.yaml``, so the config is the same),
    its folder as Hydra's run folder (the same checkpoints, TensorBoard run and log) and
    ``ckpt_path=last``. Hydra's copy of the resumed config goes to ``.hydra/resumed`` and leaves
    the original record as it was. A sweep's folder (it holds ``multirun.yaml``) gives the sweep's
    own overrides, Hydra's included (launcher, sweeper settings), and the folder as ``hydra.sweep.dir``:
    the sweep runs again into its folder, which skips what finished there and continues the rest.
    The folder may have any name a file system allows (it is quoted for Hydra). Arguments without
    ``resume=`` are returned unchanged.

    Raises:
        SystemExit: with a message, if other overrides come with ``resume=``, the folder is not a run's,
            or the run or sweep is running now (before anything is written).
    """
    resumes = [arg for arg in args if arg.startswith("resume=")]
    if not resumes:
        return args
    run = Path(resumes[0].split("=", 1)[1]).expanduser().resolve()
    if len(args) > 1:
        others = " ".join(arg for arg in args if arg != resumes[0])
        raise SystemExit(f"resume={run} continues that run with its own config; give no other arguments ({others})")
    if (run / "multirun.yaml").is_file():
        _refuse_if_live(run, SWEEP_LOCK)
        recorded = OmegaConf.load(run / "multirun.yaml").hydra.overrides
        dropped = ("hydra.sweep.dir=", "hydra.mode=")  # replaced by the folder itself and -m
        hydra_overrides = [o for o in recorded.hydra if not o.startswith(dropped)]
        return ["-m", *hydra_overrides, *recorded.task, f"hydra.sweep.dir={quoted(run)}"]
    saved = run / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise SystemExit(
            f"resume={run}: neither {saved} nor {run / 'multirun.yaml'} exists; give the folder of a run or "
            "of a sweep made by train.py"
        )
    _refuse_if_live(run, RUN_LOCK)
    overrides = [o for o in OmegaConf.to_container(OmegaConf.load(saved)) if not o.startswith("ckpt_path=")]
    return [*overrides, "ckpt_path=last", f"hydra.run.dir={quoted(run)}", "hydra.output_subdir=.hydra/resumed"]


def quoted(value: str | Path) -> str:
    """``value`` as a quoted value of a Hydra override, read back exactly (spaces, commas, brackets, quotes).

    Hydra reads a backslash literally except before a quote (or the closing quote), where it escapes, and
    OmegaConf reads ``${`` as an interpolation unless a backslash comes first.
    """
    text = str(value).replace("${", "\\${")
    text = re.sub(r"(\\*)(')", lambda m: m.group(1) * 2 + "\\'", text)  # backslashes before a quote doubled
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)  # and before the closing quote
    return f"'{text}'"


def _refuse_if_live(folder: Path, lock: str) -> None:
    live = holder_if_live(folder, lock)
    if live is not None:
        raise SystemExit(live[1])
