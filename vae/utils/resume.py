"""``resume=<run folder>``: continue a stopped run in its own folder, from its last checkpoint;
``resume=<sweep folder>``: continue a sweep in its folder (see hydra_plugins/vae_sweepers)."""

from pathlib import Path

from omegaconf import OmegaConf


def resume_arguments(args: list[str]) -> list[str]:
    """Command-line overrides with ``resume=<run folder>`` replaced by what continues that run.

    That is the run's own overrides (``<run>/.hydra/overrides.yaml``, so the config is the same),
    its folder as Hydra's run folder (the same checkpoints, TensorBoard run and log) and
    ``ckpt_path=last``. Hydra's copy of the resumed config goes to ``.hydra/resumed`` and leaves
    the original record as it was. A sweep's folder (it holds ``multirun.yaml``) gives the sweep's
    own overrides, Hydra's included (launcher, sweeper settings), and the folder as ``hydra.sweep.dir``:
    the sweep runs again into its folder, which skips what finished there and continues the rest.
    Arguments without ``resume=`` are returned unchanged.

    Raises:
        SystemExit: with a message, if other overrides come with ``resume=`` or the folder is not a run's.
    """
    resumes = [arg for arg in args if arg.startswith("resume=")]
    if not resumes:
        return args
    run = Path(resumes[0].split("=", 1)[1]).expanduser().resolve()
    if len(args) > 1:
        others = " ".join(arg for arg in args if arg != resumes[0])
        raise SystemExit(f"resume={run} continues that run with its own config; give no other arguments ({others})")
    if (run / "multirun.yaml").is_file():
        recorded = OmegaConf.load(run / "multirun.yaml").hydra.overrides
        dropped = ("hydra.sweep.dir=", "hydra.mode=")  # replaced by the folder itself and -m
        hydra_overrides = [o for o in recorded.hydra if not o.startswith(dropped)]
        return ["-m", *hydra_overrides, *recorded.task, f"hydra.sweep.dir={run}"]
    saved = run / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise SystemExit(
            f"resume={run}: neither {saved} nor {run / 'multirun.yaml'} exists; give the folder of a run or "
            "of a sweep made by train.py"
        )
    overrides = [o for o in OmegaConf.to_container(OmegaConf.load(saved)) if not o.startswith("ckpt_path=")]
    return [*overrides, "ckpt_path=last", f"hydra.run.dir={run}", "hydra.output_subdir=.hydra/resumed"]
